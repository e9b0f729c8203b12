// weft/cpu/amx.hpp — what the AMX kernels share: whether the build targets AMX tiles, whether the
// CPU has a given AMX unit and Linux lets this process use the tile state, and the tile
// configuration block that ldtilecfg reads.
#pragma once

#if defined(__AMX_TILE__) && defined(__linux__) && defined(__x86_64__)
#define WEFT_AMX_TILE 1
#include <immintrin.h>
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace weft::cpu::amx {

// CPUID.(EAX=7, ECX=0):EDX bits: 22 AMX-BF16, 24 AMX-TILE, 25 AMX-INT8.
inline constexpr unsigned bf16_unit = 1u << 22, int8_unit = 1u << 25;

// Whether the CPU has AMX tiles and the units in `units`, and Linux granted this process the tile
// data state (arch_prctl ARCH_REQ_XCOMP_PERM, asked at most once per unit set; the grant is
// per process and asking again is harmless).
inline bool available(unsigned units) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || (d & units) != units) return false;
    static const bool granted = [] {
        constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
        return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
    }();
    return granted;
}

// The 64-byte block ldtilecfg reads (palette 1): bytes per row and rows of each of the 8 tiles.
struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};

    void set(int tile, int rows_, int bytes_per_row) {
        rows[tile] = static_cast<std::uint8_t>(rows_);
        colsb[tile] = static_cast<std::uint16_t>(bytes_per_row);
    }
    void load() const {
        // GCC 12 does not see that ldtilecfg reads the whole 64 bytes and may drop the stores that
        // filled it (the tiles then stay unconfigured: SIGILL on the first tile load); make the
        // block an input here.
        __asm__ volatile("" : : "m"(*this));
        _tile_loadconfig(this);
    }
};

}  // namespace weft::cpu::amx
#endif
