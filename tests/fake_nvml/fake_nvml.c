/*
 * A fake libnvidia-ml for infercheck's NVML sampler tests (tests/nvml.rs).
 *
 * It exports the NVML entry points the sampler reaches through nvml-wrapper
 * 0.13 (which resolves every symbol at load time but tolerates missing ones
 * until they are called; nvmlInit_v2 and nvmlShutdown are always called).
 *
 * Race-free scripting: the tests compile this file once and copy the .so
 * into one temporary folder per test; the library reads its script from
 * "fake_nvml.script" in the folder it was loaded from (found with dladdr),
 * when nvmlInit_v2 is called. Each copy is a separate file, so the dynamic
 * loader gives each test its own instance with its own counters: no
 * process-wide environment variable is involved.
 *
 * Script lines (blank lines and lines starting with '#' are ignored):
 *
 *   init_error <code>        nvmlInit_v2 returns <code> (e.g. 9: driver not loaded)
 *   devices <n>              how many GPUs (default 1, at most 8)
 *   name <dev> <text...>     product name (default "Fake GPU <dev>")
 *   uuid <dev> <uuid>        UUID (default "GPU-fake-<dev>")
 *   total_mib <dev> <n>      memory installed (default 81920)
 *   no_mem_v2 <dev>          nvmlDeviceGetMemoryInfo_v2 returns FUNCTION_NOT_FOUND
 *   row <dev> key=value ...  one reading; keys: util, memutil, used_mib,
 *                            power_mw, temp, procs (pid:mib,pid:mib or "none")
 *
 * Each getter keeps its own call counter per device: its n-th call reads row
 * n (the last row once past the end). A value of "err" makes that call return
 * NVML_ERROR_UNKNOWN; keys a row leaves out keep the previous row's values
 * (the last non-error value). Defaults before any row: util 0, memutil 0,
 * used_mib 0, power_mw 100000, temp 40, no processes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

#define MAX_DEVICES 8
#define MAX_ROWS 256
#define MAX_PROCS 8
#define MIB 1048576ULL
#define ERR (-1LL)

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

struct row {
    long long util, memutil, used_mib, power_mw, temp;
    int nprocs; /* -1: the call fails */
    unsigned int pids[MAX_PROCS];
    unsigned long long proc_mib[MAX_PROCS];
};

struct fake_device {
    char name[96];
    char uuid[96];
    unsigned long long total_mib;
    int no_mem_v2;
    int nrows;
    struct row base; /* last non-error values, the start of the next row */
    struct row rows[MAX_ROWS];
    unsigned int calls_util, calls_mem_v2, calls_mem, calls_power, calls_temp, calls_procs;
    int procs_row; /* the row chosen by the last count query */
};

typedef struct fake_device *nvmlDevice_t;

static struct fake_device devices[MAX_DEVICES];
static int device_count;
static int init_error;
static int initialised;

static void reset(void) {
    memset(devices, 0, sizeof devices);
    device_count = 1;
    init_error = 0;
    for (int i = 0; i < MAX_DEVICES; i++) {
        snprintf(devices[i].name, sizeof devices[i].name, "Fake GPU %d", i);
        snprintf(devices[i].uuid, sizeof devices[i].uuid, "GPU-fake-%d", i);
        devices[i].total_mib = 81920;
        devices[i].base.power_mw = 100000;
        devices[i].base.temp = 40;
    }
}

static struct fake_device *device_arg(const char **rest) {
    char *end;
    long dev = strtol(*rest, &end, 10);
    if (end == *rest || dev < 0 || dev >= MAX_DEVICES) return NULL;
    while (*end == ' ' || *end == '\t') end++;
    *rest = end;
    return &devices[dev];
}

static long long value(const char *text, int *is_err) {
    if (strcmp(text, "err") == 0) {
        *is_err = 1;
        return ERR;
    }
    *is_err = 0;
    return strtoll(text, NULL, 10);
}

static void parse_procs(struct row *r, struct row *base, char *text) {
    if (strcmp(text, "err") == 0) {
        r->nprocs = -1;
        return;
    }
    r->nprocs = 0;
    if (strcmp(text, "none") != 0) {
        char *save = NULL;
        for (char *item = strtok_r(text, ",", &save); item && r->nprocs < MAX_PROCS;
             item = strtok_r(NULL, ",", &save)) {
            unsigned int pid;
            unsigned long long mib;
            if (sscanf(item, "%u:%llu", &pid, &mib) == 2) {
                r->pids[r->nprocs] = pid;
                r->proc_mib[r->nprocs] = mib;
                r->nprocs++;
            }
        }
    }
    base->nprocs = r->nprocs;
    memcpy(base->pids, r->pids, sizeof r->pids);
    memcpy(base->proc_mib, r->proc_mib, sizeof r->proc_mib);
}

static void parse_row(struct fake_device *d, char *rest) {
    if (d->nrows >= MAX_ROWS) return;
    struct row *r = &d->rows[d->nrows++];
    *r = d->base;
    char *save = NULL;
    for (char *pair = strtok_r(rest, " \t", &save); pair; pair = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq) continue;
        *eq = '\0';
        const char *key = pair;
        char *text = eq + 1;
        int is_err;
        long long *field = NULL, *base_field = NULL;
        if (strcmp(key, "util") == 0) field = &r->util, base_field = &d->base.util;
        else if (strcmp(key, "memutil") == 0) field = &r->memutil, base_field = &d->base.memutil;
        else if (strcmp(key, "used_mib") == 0) field = &r->used_mib, base_field = &d->base.used_mib;
        else if (strcmp(key, "power_mw") == 0) field = &r->power_mw, base_field = &d->base.power_mw;
        else if (strcmp(key, "temp") == 0) field = &r->temp, base_field = &d->base.temp;
        else if (strcmp(key, "procs") == 0) {
            parse_procs(r, &d->base, text);
            continue;
        } else {
            fprintf(stderr, "fake_nvml: unknown key '%s'\n", key);
            continue;
        }
        *field = value(text, &is_err);
        if (!is_err) *base_field = *field;
    }
}

static int load_script(void) {
    Dl_info info;
    if (!dladdr((void *)&load_script, &info) || !info.dli_fname) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s", info.dli_fname);
    char *slash = strrchr(path, '/');
    if (slash) slash[1] = '\0';
    else path[0] = '\0';
    strncat(path, "fake_nvml.script", sizeof path - strlen(path) - 1);

    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "fake_nvml: no script at %s\n", path);
        return -1;
    }
    reset();
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' || *p == '#') continue;
        char word[32];
        int n = 0;
        if (sscanf(p, "%31s%n", word, &n) != 1) continue;
        const char *rest = p + n;
        while (*rest == ' ' || *rest == '\t') rest++;
        struct fake_device *d;
        if (strcmp(word, "init_error") == 0) {
            init_error = atoi(rest);
        } else if (strcmp(word, "devices") == 0) {
            device_count = atoi(rest);
            if (device_count < 0) device_count = 0;
            if (device_count > MAX_DEVICES) device_count = MAX_DEVICES;
        } else if ((d = device_arg(&rest)) == NULL) {
            fprintf(stderr, "fake_nvml: bad device in '%s'\n", line);
        } else if (strcmp(word, "name") == 0) {
            snprintf(d->name, sizeof d->name, "%s", rest);
        } else if (strcmp(word, "uuid") == 0) {
            snprintf(d->uuid, sizeof d->uuid, "%s", rest);
        } else if (strcmp(word, "total_mib") == 0) {
            d->total_mib = strtoull(rest, NULL, 10);
        } else if (strcmp(word, "no_mem_v2") == 0) {
            d->no_mem_v2 = 1;
        } else if (strcmp(word, "row") == 0) {
            char copy[2048];
            snprintf(copy, sizeof copy, "%s", rest);
            parse_row(d, copy);
        } else {
            fprintf(stderr, "fake_nvml: unknown line '%s'\n", line);
        }
    }
    fclose(f);
    return 0;
}

/* The row index for this call of one getter (-1: no rows, the defaults),
 * advancing its counter. */
static int next_index(struct fake_device *d, unsigned int *calls) {
    unsigned int n = (*calls)++;
    if (d->nrows == 0) return -1;
    return (int)(n < (unsigned int)d->nrows ? n : (unsigned int)d->nrows - 1);
}

static const struct row *row_at(const struct fake_device *d, int index) {
    return index < 0 ? &d->base : &d->rows[index];
}

static const struct row *next_row(struct fake_device *d, unsigned int *calls) {
    return row_at(d, next_index(d, calls));
}

static int valid(nvmlDevice_t d) {
    return initialised && d >= devices && d < devices + device_count;
}

static nvmlReturn_t copy_string(const char *s, char *out, unsigned int length) {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(s) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, s, strlen(s) + 1);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) {
    if (load_script() != 0) return NVML_ERROR_UNKNOWN;
    if (init_error) return init_error;
    initialised = 1;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    return nvmlInit_v2();
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    initialised = 0;
    return NVML_SUCCESS;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    default: return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    return copy_string("999.99-fake", version, length);
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = (unsigned int)device_count;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= (unsigned int)device_count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
    if (!valid(d)) return NVML_ERROR_INVALID_ARGUMENT;
    return copy_string(d->name, name, length);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
    if (!valid(d)) return NVML_ERROR_INVALID_ARGUMENT;
    return copy_string(d->uuid, uuid, length);
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *out) {
    if (!valid(d) || !out) return NVML_ERROR_INVALID_ARGUMENT;
    const struct row *r = next_row(d, &d->calls_util);
    if (r->util == ERR || r->memutil == ERR) return NVML_ERROR_UNKNOWN;
    out->gpu = (unsigned int)r->util;
    out->memory = (unsigned int)r->memutil;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *out) {
    if (!valid(d) || !out) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->no_mem_v2) return NVML_ERROR_FUNCTION_NOT_FOUND;
    /* NVML_STRUCT_VERSION(Memory, 2): what a correct caller sets. */
    if (out->version != (unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    const struct row *r = next_row(d, &d->calls_mem_v2);
    if (r->used_mib == ERR) return NVML_ERROR_UNKNOWN;
    out->total = d->total_mib * MIB;
    out->reserved = 0;
    out->used = (unsigned long long)r->used_mib * MIB;
    out->free = out->total - out->used;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *out) {
    if (!valid(d) || !out) return NVML_ERROR_INVALID_ARGUMENT;
    const struct row *r = next_row(d, &d->calls_mem);
    if (r->used_mib == ERR) return NVML_ERROR_UNKNOWN;
    out->total = d->total_mib * MIB;
    out->used = (unsigned long long)r->used_mib * MIB;
    out->free = out->total - out->used;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *milliwatts) {
    if (!valid(d) || !milliwatts) return NVML_ERROR_INVALID_ARGUMENT;
    const struct row *r = next_row(d, &d->calls_power);
    if (r->power_mw == ERR) return NVML_ERROR_UNKNOWN;
    *milliwatts = (unsigned int)r->power_mw;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *temp) {
    if (!valid(d) || !temp) return NVML_ERROR_INVALID_ARGUMENT;
    if (sensor != 0) return NVML_ERROR_NOT_SUPPORTED; /* NVML_TEMPERATURE_GPU */
    const struct row *r = next_row(d, &d->calls_temp);
    if (r->temp == ERR) return NVML_ERROR_UNKNOWN;
    *temp = (unsigned int)r->temp;
    return NVML_SUCCESS;
}

/*
 * A query (no buffer, or one too small) picks the row and answers the count;
 * the fill call that follows reads the same row.
 */
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                            nvmlProcessInfo_t *infos) {
    if (!valid(d) || !count) return NVML_ERROR_INVALID_ARGUMENT;
    if (!infos) {
        d->procs_row = next_index(d, &d->calls_procs);
        const struct row *r = row_at(d, d->procs_row);
        if (r->nprocs < 0) return NVML_ERROR_UNKNOWN;
        unsigned int needed = (unsigned int)r->nprocs;
        *count = needed;
        return needed == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    const struct row *r = row_at(d, d->procs_row);
    if (r->nprocs < 0) return NVML_ERROR_UNKNOWN;
    unsigned int needed = (unsigned int)r->nprocs;
    if (*count < needed) {
        *count = needed;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < needed; i++) {
        infos[i].pid = r->pids[i];
        infos[i].usedGpuMemory = r->proc_mib[i] * MIB;
        infos[i].gpuInstanceId = 0xFFFFFFFFu;
        infos[i].computeInstanceId = 0xFFFFFFFFu;
    }
    *count = needed;
    return NVML_SUCCESS;
}
