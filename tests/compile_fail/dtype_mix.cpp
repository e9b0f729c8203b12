// Must NOT compile: adding f32 and f16 tensors without an explicit cast (checked by ctest).
#include <weft/weft.hpp>

int main() {
    weft::Tensor<float> a(weft::Shape{4});
    weft::Tensor<weft::f16> b(weft::Shape{4});
    weft::Tensor<float> c = a + b;
    return static_cast<int>(c.numel());
}
