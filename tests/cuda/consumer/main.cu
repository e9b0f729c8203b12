// A user's CUDA program: a fused expression on device tensors, checked on the host. Without a CUDA
// device it says so and exits 0 (it was built and linked, which is what the test checks here).
#include <weft/cuda.cuh>

#include <cstdio>

int main() {
    if (weft::cuda::device_count() == 0) {
        std::puts("app_cuda: built against weft::cuda; no CUDA device, nothing run");
        return 0;
    }
    weft::Tensor<float> a(weft::Shape{2, 3}), b(weft::Shape{3});
    for (weft::Index i = 0; i < 6; ++i) a.data()[i] = float(i);
    for (weft::Index i = 0; i < 3; ++i) b.data()[i] = 1.0f + float(i);
    weft::cuda::DeviceTensor<float> da = weft::cuda::to_device(a), db = weft::cuda::to_device(b);
    weft::cuda::DeviceTensor<float> dc(weft::Shape{2, 3});
    weft::cuda::assign(dc.view(), da.view() * db.view() + 1.0f);
    const weft::Tensor<float> c = weft::cuda::to_host(dc);
    for (weft::Index i = 0; i < 6; ++i)
        if (c.data()[i] != a.data()[i] * b.data()[i % 3] + 1.0f) return std::puts("app_cuda: wrong result"), 1;
    std::puts("app_cuda: ok");
    return 0;
}
