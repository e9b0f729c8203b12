// Decoding allocates nothing after warm-up: every buffer the model uses lives in its workspace.
// A separate program, because it replaces the global operator new to count allocations.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include <weft/weft.hpp>

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    const std::size_t align = static_cast<std::size_t>(a);
    if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    const std::size_t align = static_cast<std::size_t>(a);
    return std::aligned_alloc(align, (n + align - 1) / align * align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: decode_allocations MODEL_DIR\n");
        return 2;
    }
    int failures = 0;
    for (const char* variant : {"gqa-f32-llama3", "gqa-bf16-llama3"}) {
        weft::Llama model = weft::Llama::from_pretrained(std::string(argv[1]) + "/" + variant, 64);
        const std::int32_t prompt[] = {3, 17, 42, 5};
        model.forward(prompt, weft::Logits::last);
        std::int32_t token = 7;
        for (int i = 0; i < 3; ++i) token = weft::row_argmax(model.decode(token))(0);  // warm-up
        const long before = allocations.load();
        if (before == 0) {  // loading must have allocated: otherwise the counter is not in place
            std::printf("allocation counter saw nothing\n");
            return 1;
        }
        for (int i = 0; i < 20; ++i) token = static_cast<std::int32_t>((token * 31 + 1) % 263), model.decode(token);
        const long during = allocations.load() - before;
        std::printf("%s: %ld allocations in 20 decoded tokens after warm-up\n", variant, during);
        failures += during != 0;
    }
    std::printf("%d passed, %d failed\n", 2 - failures, failures);
    return failures ? 1 : 0;
}
