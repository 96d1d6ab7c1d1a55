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
 *   gpm <dev>                the GPU has GPM (Hopper and later); without this
 *                            line nvmlGpmQueryDeviceSupport says it has not,
 *                            and every other GPM call on it is NOT_SUPPORTED
 *   row <dev> key=value ...  one reading; keys: util, memutil, used_mib,
 *                            power_mw, temp, procs (pid:mib,pid:mib or "none"),
 *                            and the GPM metrics in percent (decimals allowed):
 *                            gr (GRAPHICS_UTIL), sm (SM_UTIL), occupancy
 *                            (SM_OCCUPANCY), tensor (ANY_TENSOR_UTIL), dram
 *                            (DRAM_BW_UTIL), or gpm_sample=err (the sample
 *                            taken at that row fails)
 *
 * GPM: the n-th nvmlGpmSampleGet of a device reads row n; nvmlGpmMetricsGet
 * on (sample1, sample2) answers the GPM values of sample2's row, so the
 * first row's values are only ever a baseline. It checks what a correct
 * caller does: both samples taken, on the same device, sample1 first, the
 * request's version 1, at most NVML_GPM_METRIC_MAX metrics. Metric ids other
 * than the five above answer NOT_SUPPORTED in their own nvmlReturn.
 *
 * At nvmlShutdown the library writes "fake_nvml.out" beside the script:
 * "gpm_samples_allocated <n>" and "gpm_samples_live <n>" (allocated and not
 * freed), so a test can check that every GPM sample was freed.
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

#define GPM_METRICS 5
/* NVML's ids of the GPM metrics the fake computes, in `gpm` order. */
static const unsigned int gpm_ids[GPM_METRICS] = {1, 2, 3, 5, 10};
static const char *const gpm_keys[GPM_METRICS] = {"gr", "sm", "occupancy", "tensor", "dram"};
static const char *const gpm_names[GPM_METRICS] = {"gr_util", "sm_util", "sm_occupancy",
                                                   "any_tensor_util", "dram_bw_util"};
#define GPM_METRIC_MAX 210

struct row {
    long long util, memutil, used_mib, power_mw, temp;
    double gpm[GPM_METRICS];
    int gpm_sample_err;
    int nprocs; /* -1: the call fails */
    unsigned int pids[MAX_PROCS];
    unsigned long long proc_mib[MAX_PROCS];
};

struct fake_device {
    char name[96];
    char uuid[96];
    unsigned long long total_mib;
    int no_mem_v2;
    int gpm;
    unsigned int calls_gpm;
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
static unsigned int gpm_allocated, gpm_live;

/* A GPM sample: empty until nvmlGpmSampleGet fills it. */
struct fake_gpm_sample {
    struct fake_device *device; /* NULL: not taken yet */
    int row;
    unsigned int seq;
};
typedef struct fake_gpm_sample *nvmlGpmSample_t;

typedef struct {
    unsigned int metricId;
    nvmlReturn_t nvmlReturn;
    double value;
    struct {
        char *shortName;
        char *longName;
        char *unit;
    } metricInfo;
} nvmlGpmMetric_t;

typedef struct {
    unsigned int version;
    unsigned int numMetrics;
    nvmlGpmSample_t sample1;
    nvmlGpmSample_t sample2;
    nvmlGpmMetric_t metrics[GPM_METRIC_MAX];
} nvmlGpmMetricsGet_t;

typedef struct {
    unsigned int version;
    unsigned int isSupportedDevice;
} nvmlGpmSupport_t;

static void reset(void) {
    memset(devices, 0, sizeof devices);
    device_count = 1;
    init_error = 0;
    gpm_allocated = 0;
    gpm_live = 0;
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

/* A GPM key: its value (kept for later rows); 0 when `key` is not one. */
static int parse_gpm(struct row *r, struct row *base, const char *key, const char *text) {
    for (int i = 0; i < GPM_METRICS; i++) {
        if (strcmp(key, gpm_keys[i]) == 0) {
            r->gpm[i] = strtod(text, NULL);
            base->gpm[i] = r->gpm[i];
            return 1;
        }
    }
    return 0;
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
        } else if (strcmp(key, "gpm_sample") == 0) {
            r->gpm_sample_err = strcmp(text, "err") == 0;
            continue;
        } else if (parse_gpm(r, &d->base, key, text)) {
            continue;
        } else {
            fprintf(stderr, "fake_nvml: unknown key '%s'\n", key);
            continue;
        }
        *field = value(text, &is_err);
        if (!is_err) *base_field = *field;
    }
}

/* The path of `file` in the folder this library was loaded from. */
static int beside_library(const char *file, char *path, size_t size) {
    Dl_info info;
    if (!dladdr((void *)&beside_library, &info) || !info.dli_fname) return -1;
    snprintf(path, size, "%s", info.dli_fname);
    char *slash = strrchr(path, '/');
    if (slash) slash[1] = '\0';
    else path[0] = '\0';
    strncat(path, file, size - strlen(path) - 1);
    return 0;
}

static int load_script(void) {
    char path[4096];
    if (beside_library("fake_nvml.script", path, sizeof path) != 0) return -1;

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
        } else if (strcmp(word, "gpm") == 0) {
            d->gpm = 1;
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

/* What the tests read back after the sampler stopped. */
static void write_out(void) {
    char path[4096];
    if (beside_library("fake_nvml.out", path, sizeof path) != 0) return;
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "gpm_samples_allocated %u\ngpm_samples_live %u\n", gpm_allocated, gpm_live);
    fclose(f);
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    write_out();
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

EXPORT nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t d, nvmlGpmSupport_t *support) {
    if (!valid(d) || !support) return NVML_ERROR_INVALID_ARGUMENT;
    if (support->version != 1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    support->isSupportedDevice = (unsigned int)d->gpm;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t *sample) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (!sample) return NVML_ERROR_INVALID_ARGUMENT;
    *sample = calloc(1, sizeof **sample);
    if (!*sample) return NVML_ERROR_UNKNOWN;
    gpm_allocated++;
    gpm_live++;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t sample) {
    if (!sample) return NVML_ERROR_INVALID_ARGUMENT;
    free(sample);
    gpm_live--;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpmSampleGet(nvmlDevice_t d, nvmlGpmSample_t sample) {
    static unsigned int seq;
    if (!valid(d) || !sample) return NVML_ERROR_INVALID_ARGUMENT;
    if (!d->gpm) return NVML_ERROR_NOT_SUPPORTED;
    int index = next_index(d, &d->calls_gpm);
    if (row_at(d, index)->gpm_sample_err) return NVML_ERROR_UNKNOWN;
    sample->device = d;
    sample->row = index;
    sample->seq = ++seq;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *request) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (!request) return NVML_ERROR_INVALID_ARGUMENT;
    if (request->version != 1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    nvmlGpmSample_t a = request->sample1, b = request->sample2;
    if (!a || !b || !a->device || a->device != b->device || a->seq >= b->seq ||
        request->numMetrics > GPM_METRIC_MAX)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!a->device->gpm) return NVML_ERROR_NOT_SUPPORTED;
    const struct row *r = row_at(b->device, b->row);
    for (unsigned int m = 0; m < request->numMetrics; m++) {
        nvmlGpmMetric_t *metric = &request->metrics[m];
        metric->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        for (int i = 0; i < GPM_METRICS; i++) {
            if (metric->metricId == gpm_ids[i]) {
                metric->nvmlReturn = NVML_SUCCESS;
                metric->value = r->gpm[i];
                metric->metricInfo.shortName = (char *)gpm_names[i];
                metric->metricInfo.longName = (char *)gpm_names[i];
                metric->metricInfo.unit = "%";
            }
        }
    }
    return NVML_SUCCESS;
}
