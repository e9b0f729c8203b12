// Must NOT compile: assigning an f16 expression to an f32 tensor without weft::cast.
#include <weft/weft.hpp>

int main() {
    weft::Tensor<weft::f16> h(weft::Shape{4});
    weft::Tensor<float> f(weft::Shape{4});
    f = h * 2.0f;
    return 0;
}
