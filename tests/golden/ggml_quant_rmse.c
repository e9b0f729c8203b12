/* ggml_quant_rmse.c — ggml's own quantizers on weft's golden data, for make_quant_golden.py.
 * Calls only ggml's public API (ggml_quantize_chunk with no importance matrix, and the type
 * traits' to_float); build and run instructions are in make_quant_golden.py's docstring.
 *
 *   ggml_quant_rmse DATA_DIR BYTE_BLOCKS NAME ROWS COLS [NAME ROWS COLS ...]
 *
 * Prints JSON to stdout: ggml's version, how many of the BYTE_BLOCKS blocks of
 * DATA_DIR/bytes_input.f32 ggml quantizes to other bytes than DATA_DIR/bytes_q8_0.bin /
 * bytes_q4_0.bin (gguf-py's), the round-trip RMSE of each type on each data set
 * DATA_DIR/rmse_NAME.f32 ([ROWS, COLS] f32). ggml's single-thread quantization speed on 4M
 * normal values goes to stderr (it is not golden data). */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml.h"

static void* read_file(const char* dir, const char* name, size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE* f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); exit(1); }
    void* p = malloc(bytes);
    if (fread(p, 1, bytes, f) != bytes) { fprintf(stderr, "%s is shorter than %zu bytes\n", path, bytes); exit(1); }
    fclose(f);
    return p;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Round-trip RMSE of x [rows, cols] through `type`, in double. */
static double round_trip_rmse(enum ggml_type type, const float* x, int64_t rows, int64_t cols) {
    const size_t bytes = ggml_row_size(type, cols) * (size_t)rows;
    void* q = malloc(bytes);
    float* y = malloc(sizeof(float) * (size_t)(rows * cols));
    ggml_quantize_chunk(type, x, q, 0, rows, cols, NULL);
    ggml_get_type_traits(type)->to_float(q, y, rows * cols);
    double s = 0;
    for (int64_t i = 0; i < rows * cols; ++i) {
        const double d = (double)y[i] - (double)x[i];
        s += d * d;
    }
    free(q);
    free(y);
    return sqrt(s / (double)(rows * cols));
}

static const struct { enum ggml_type type; const char* name; } types[] = {
    {GGML_TYPE_Q8_0, "q8_0"}, {GGML_TYPE_Q4_0, "q4_0"}, {GGML_TYPE_Q4_K, "q4_k"},
    {GGML_TYPE_Q5_K, "q5_k"}, {GGML_TYPE_Q6_K, "q6_k"},
};
enum { n_types = sizeof types / sizeof types[0] };

int main(int argc, char** argv) {
    if (argc < 3 || (argc - 3) % 3 != 0) {
        fprintf(stderr, "usage: %s DATA_DIR BYTE_BLOCKS [NAME ROWS COLS]...\n", argv[0]);
        return 2;
    }
    const char* dir = argv[1];
    const int64_t nb = atoll(argv[2]);
    struct ggml_init_params params = {1 << 20, NULL, false};
    struct ggml_context* ctx = ggml_init(params);

    printf("{\n \"ggml_version\": \"%s\",\n \"ggml_commit\": \"%s\",\n", ggml_version(), ggml_commit());
    printf(" \"how\": \"ggml_quantize_chunk(type, x, q, 0, rows, cols, NULL) then to_float; RMSE over all values in double\",\n");

    /* Byte identity of ggml's Q8_0 / Q4_0 with gguf-py's golden bytes. */
    const float* in = read_file(dir, "bytes_input.f32", sizeof(float) * (size_t)(nb * 32));
    printf(" \"bytes_mismatches\": {");
    for (int k = 0; k < 2; ++k) {
        const enum ggml_type t = k == 0 ? GGML_TYPE_Q8_0 : GGML_TYPE_Q4_0;
        const size_t bb = ggml_row_size(t, 32);
        const unsigned char* want = read_file(dir, k == 0 ? "bytes_q8_0.bin" : "bytes_q4_0.bin", bb * (size_t)nb);
        unsigned char* got = malloc(bb * (size_t)nb);
        ggml_quantize_chunk(t, in, got, 0, nb, 32, NULL);
        int mism = 0;
        for (int64_t b = 0; b < nb; ++b) {
            if (memcmp(got + b * bb, want + b * bb, bb) != 0) {
                if (mism < 5) fprintf(stderr, "%s block %lld differs\n", k == 0 ? "q8_0" : "q4_0", (long long)b);
                ++mism;
            }
        }
        printf("%s\"%s\": %d", k ? ", " : "", k == 0 ? "q8_0" : "q4_0", mism);
        free(got);
        free((void*)want);
    }
    printf("},\n");

    /* Round-trip RMSE per type and data set. */
    const int n_sets = (argc - 3) / 3;
    float** sets = malloc(sizeof(float*) * (size_t)n_sets);
    for (int s = 0; s < n_sets; ++s) {
        char name[512];
        snprintf(name, sizeof name, "rmse_%s.f32", argv[3 + 3 * s]);
        sets[s] = read_file(dir, name, sizeof(float) * (size_t)(atoll(argv[4 + 3 * s]) * atoll(argv[5 + 3 * s])));
    }
    printf(" \"rmse\": {\n");
    for (int t = 0; t < n_types; ++t) {
        printf("  \"%s\": {", types[t].name);
        for (int s = 0; s < n_sets; ++s) {
            const double r = round_trip_rmse(types[t].type, sets[s], atoll(argv[4 + 3 * s]), atoll(argv[5 + 3 * s]));
            printf("%s\"%s\": %.9e", s ? ", " : "", argv[3 + 3 * s], r);
        }
        printf("}%s\n", t + 1 < n_types ? "," : "");
    }
    printf(" }\n}\n");

    /* Single-thread speed on 4M normal values (xorshift + Box-Muller), for the report only. */
    const int64_t n = 1 << 22;
    float* x = malloc(sizeof(float) * (size_t)n);
    uint64_t st = 88172645463325252ull;
    for (int64_t i = 0; i < n; i += 2) {
        double u[2];
        for (int k = 0; k < 2; ++k) {
            st ^= st << 13; st ^= st >> 7; st ^= st << 17;
            u[k] = ((double)(st >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        }
        const double r = sqrt(-2 * log(u[0])) * 0.02;
        x[i] = (float)(r * cos(6.283185307179586 * u[1]));
        x[i + 1] = (float)(r * sin(6.283185307179586 * u[1]));
    }
    void* q = malloc(ggml_row_size(GGML_TYPE_Q8_0, n));
    fprintf(stderr, "ggml quantization speed, one thread, values/s:");
    for (int t = 0; t < n_types; ++t) {
        const double t0 = now();
        ggml_quantize_chunk(types[t].type, x, q, 0, n / 4096, 4096, NULL);
        fprintf(stderr, " %s %.3g", types[t].name, (double)n / (now() - t0));
    }
    fprintf(stderr, "\n");
    ggml_free(ctx);
    return 0;
}
