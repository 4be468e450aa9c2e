// What this CPU is and which of its vector units the operating system lets a program use
// (CPUID and XGETBV), and the switch that makes OpenBLAS run the kernels those features
// call for: see include/CKernels.h for the contract.
#include "CKernels.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <cpuid.h>

static unsigned long long readXCR0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

void ck_cpu_identify(ck_cpu *cpu) {
    memset(cpu, 0, sizeof *cpu);
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned int maxLeaf = a;
    memcpy(cpu->vendor, &b, 4);
    memcpy(cpu->vendor + 4, &d, 4);
    memcpy(cpu->vendor + 8, &c, 4);

    __get_cpuid(1, &a, &b, &c, &d);
    unsigned int family = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf) model += ((a >> 16) & 0xf) << 4;
    cpu->family = (int)family;
    cpu->model = (int)model;
    cpu->stepping = (int)(a & 0xf);
    unsigned int leaf1c = c;

    // The OS saves a register file only when XCR0 says so; without that, using it faults.
    unsigned long long xcr0 = (leaf1c & (1u << 27)) ? readXCR0() : 0;
    int osAVX = (xcr0 & 0x6) == 0x6;             // XMM and YMM state
    int osAVX512 = osAVX && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
    int osAMX = (xcr0 & 0x60000ull) == 0x60000ull;  // XTILECFG, XTILEDATA

    unsigned long long f = 0;
    if (leaf1c & (1u << 20)) f |= CK_SSE42;
    if (osAVX && (leaf1c & (1u << 28))) f |= CK_AVX;
    if (osAVX && (leaf1c & (1u << 12))) f |= CK_FMA;
    if (osAVX && (leaf1c & (1u << 29))) f |= CK_F16C;
    if (maxLeaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (osAVX && (b & (1u << 5))) f |= CK_AVX2;
        if (osAVX512) {
            if (b & (1u << 16)) f |= CK_AVX512F;
            if (b & (1u << 17)) f |= CK_AVX512DQ;
            if (b & (1u << 30)) f |= CK_AVX512BW;
            if (b & (1u << 31)) f |= CK_AVX512VL;
            if (c & (1u << 11)) f |= CK_AVX512VNNI;
        }
        if (osAMX) {
            if (d & (1u << 24)) f |= CK_AMX_TILE;
            if (d & (1u << 22)) f |= CK_AMX_BF16;
        }
        unsigned int leaf7max = a;
        if (leaf7max >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            if (osAVX512 && (a & (1u << 5))) f |= CK_AVX512BF16;
        }
    }
    cpu->features = f;

    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
        unsigned int *brand = (unsigned int *)cpu->brand;
        for (unsigned int leaf = 0; leaf < 3; leaf++) {
            __get_cpuid(0x80000002 + leaf, &a, &b, &c, &d);
            brand[4 * leaf] = a;
            brand[4 * leaf + 1] = b;
            brand[4 * leaf + 2] = c;
            brand[4 * leaf + 3] = d;
        }
        cpu->brand[48] = 0;
    }
}
#else
void ck_cpu_identify(ck_cpu *cpu) { memset(cpu, 0, sizeof *cpu); }
#endif

// OpenBLAS's own entry points, looked up at run time: a BLAS without them (a build
// for one CPU, or another library behind libblas) simply has no core to report or switch.
typedef char *(*corenameFunction)(void);
typedef void (*voidFunction)(void);

const char *ck_blas_core(void) {
    corenameFunction corename = (corenameFunction)dlsym(RTLD_DEFAULT, "openblas_get_corename");
    return corename ? corename() : NULL;
}

const char *ck_blas_config(void) {
    corenameFunction config = (corenameFunction)dlsym(RTLD_DEFAULT, "openblas_get_config");
    return config ? config() : NULL;
}

int ck_blas_switch_core(const char *core) {
    voidFunction quit = (voidFunction)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    voidFunction init = (voidFunction)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!quit || !init || !core) return 0;
    // gotoblas_dynamic_init reads OPENBLAS_CORETYPE as at start-up; the variable is put back
    // afterwards, so that what this process was started with stays what it reports.
    const char *previous = getenv("OPENBLAS_CORETYPE");
    char *saved = previous ? strdup(previous) : NULL;
    setenv("OPENBLAS_CORETYPE", core, 1);
    quit();
    init();
    if (saved) {
        setenv("OPENBLAS_CORETYPE", saved, 1);
        free(saved);
    } else {
        unsetenv("OPENBLAS_CORETYPE");
    }
    return 1;
}
