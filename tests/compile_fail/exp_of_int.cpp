// Must NOT compile: exp of an integer tensor (needs weft::cast<float> first).
#include <weft/weft.hpp>

int main() {
    weft::Tensor<int> i(weft::Shape{4});
    weft::Tensor<int> e = weft::exp(i);
    return 0;
}
