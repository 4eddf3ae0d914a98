/* spandsp 0.0.6's dtmf_rx as a command-line detector and as a timed core, the anchor that
 * `benches/spandsp/run.sh` and `cargo bench --bench detector` measure hotdesk against.
 *
 *   dtmf_spandsp FILE.wav...        stream each 8 kHz 16-bit mono PCM WAV through dtmf_rx in
 *                                   160-sample chunks and print `PATH: DIGITS` (as
 *                                   `hotdesk detect` does), reading the file in 64 KiB blocks
 *   dtmf_spandsp --core FILE.raw    load raw 16-bit samples, run dtmf_rx over them 9 times
 *                                   in 160-sample chunks and print the median samples/s
 *
 * Build: cc -O2 -o dtmf_spandsp dtmf_spandsp.c -lspandsp -lm   (written for hotdesk)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spandsp.h>

#define CHUNK 160

static void collect(void *user, const char *digits, int len) {
    char *out = user;
    size_t have = strlen(out);
    if (have + len < 4095) {
        memcpy(out + have, digits, len);
        out[have + len] = 0;
    }
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return p[0] | p[1] << 8; }

/* Finds the data chunk of a PCM16 mono 8 kHz WAV; returns its length, file positioned at it. */
static long wav_data(FILE *f) {
    uint8_t h[12], c[8], fmt[16];
    if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) return -1;
    int fmt_ok = 0;
    while (fread(c, 1, 8, f) == 8) {
        uint32_t len = le32(c + 4);
        if (!memcmp(c, "fmt ", 4)) {
            if (len < 16 || fread(fmt, 1, 16, f) != 16) return -1;
            fmt_ok = le16(fmt) == 1 && le16(fmt + 2) == 1 && le32(fmt + 4) == 8000 && le16(fmt + 14) == 16;
            fseek(f, len - 16 + (len & 1), SEEK_CUR);
        } else if (!memcmp(c, "data", 4)) {
            return fmt_ok ? (long)len : -1;
        } else {
            fseek(f, len + (len & 1), SEEK_CUR);
        }
    }
    return -1;
}

static int detect(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 2; }
    long left = wav_data(f);
    if (left < 0) { fprintf(stderr, "%s: not an 8 kHz 16-bit mono PCM WAV\n", path); fclose(f); return 2; }
    static char digits[4096];
    digits[0] = 0;
    dtmf_rx_state_t *rx = dtmf_rx_init(NULL, collect, digits);
    static int16_t buf[32768];
    while (left > 0) {
        size_t want = left / 2 < 32768 ? (size_t)left / 2 : 32768;
        size_t got = fread(buf, 2, want, f);
        if (got == 0) break;
        for (size_t i = 0; i < got; i += CHUNK)
            dtmf_rx(rx, buf + i, got - i < CHUNK ? (int)(got - i) : CHUNK);
        left -= (long)got * 2;
    }
    fclose(f);
    printf("%s: %s\n", path, digits[0] ? digits : "-");
    dtmf_rx_free(rx);
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int core(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 2; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f) / 2;
    fseek(f, 0, SEEK_SET);
    int16_t *x = malloc(n * 2);
    if (fread(x, 2, n, f) != (size_t)n) { fprintf(stderr, "%s: short read\n", path); return 2; }
    fclose(f);
    double rates[9];
    static char digits[4096];
    for (int r = 0; r < 9; r++) {
        digits[0] = 0;
        dtmf_rx_state_t *rx = dtmf_rx_init(NULL, collect, digits);
        double t = now();
        for (long i = 0; i < n; i += CHUNK)
            dtmf_rx(rx, x + i, n - i < CHUNK ? (int)(n - i) : CHUNK);
        rates[r] = n / (now() - t);
        dtmf_rx_free(rx);
    }
    qsort(rates, 9, sizeof rates[0], cmp);
    printf("spandsp_core_samples_per_s %.0f min %.0f max %.0f digits %zu\n", rates[4], rates[0], rates[8], strlen(digits));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--core")) return core(argv[2]);
    if (argc < 2) { fprintf(stderr, "usage: %s FILE.wav... | --core FILE.raw\n", argv[0]); return 2; }
    int status = 0;
    for (int i = 1; i < argc; i++)
        if (detect(argv[i])) status = 2;
    return status;
}
