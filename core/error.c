// error.c: the thread-local detail string and the one table of messages for
// every library's codes (see error.h). The codes are defined in each
// library's header; this file holds only numbers and words, so core/ still
// includes nothing above it.
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

// Per thread so that reader threads and workers do not overwrite each
// other's detail.
static _Thread_local char t_detail[1024];
static _Thread_local int t_code;
static _Thread_local char t_msg[1280];

int vel_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_detail, sizeof t_detail, fmt, ap);
    va_end(ap);
    t_code = code;
    return code;
}

const char *vel_error_detail(void) { return t_detail; }

void vel_error_clear(void) {
    t_detail[0] = 0;
    t_code = 0;
}

typedef struct {
    int hi, lo;          // hi >= code >= lo
    const char *name;
} range;

// One row per library; the order is the order of the ranges.
static const range k_ranges[] = {
    {-1, -99, "core"},
    {-100, -199, "bus"},
    {-200, -299, "store"},
    {-300, -399, "checkpoint"},
    {-400, -499, "data"},
    {-500, -599, "model"},
    {-600, -649, "cuda"},
    {-650, -669, "device"},
    {-670, -699, "dist"},
    {-700, -799, "metrics"},
};

typedef struct {
    int code;
    const char *msg;
} message;

// Messages name the check that failed so that a log line is enough to find
// the mistake; the detail string adds which file, tensor or field.
static const message k_messages[] = {
    {VEL_OK, "ok"},
    // core (core/error.h)
    {-1, "out of memory"},
    {-2, "I/O error"},
    {-3, "invalid argument"},
    {-4, "malformed data"},
    {-5, "not found"},
    {-6, "shape mismatch"},
    {-7, "value out of range"},
    {-8, "non-finite value (NaN or infinity)"},
    // bus (bus/errors.h)
    {-100, "bus: no message within the timeout"},
    {-101, "bus: header frame empty or larger than the header size cap"},
    {-102, "bus: header is not well-formed msgpack (truncated, garbage or trailing bytes)"},
    {-103, "bus: unsupported header version 'v'"},
    {-104, "bus: header field missing, repeated or of the wrong type"},
    {-105, "bus: unknown dtype (expected f32, bf16, f16, u8 or i32)"},
    {-106, "bus: tensor rank larger than 8"},
    {-107, "bus: negative dimension or shape product overflows"},
    {-108, "bus: frame count does not match the tensors named in the header"},
    {-109, "bus: payload frame length differs from shape x dtype size"},
    {-110, "bus: message larger than the total size cap"},
    {-111, "bus: ZeroMQ call failed"},
    {-112, "bus: endpoint not understood (use ipc://PATH, inproc://NAME or tcp://HOST:PORT)"},
    {-113, "bus: interrupted (signal or context terminating)"},
    {-114, "bus: name or kind empty, too long or repeated"},
    {-115, "bus: end of stream (every producer has ended)"},
    {-116, "bus: the source aborted the run"},
    {-117, "bus: nothing received for longer than the idle timeout"},
    {-118, "bus: message of an unexpected kind, dtype or shape"},
    {-119, "bus: item id not issued by any known source"},
    {-120, "bus: bad tcp port (a number in 1..65535, or * when binding)"},
    {-121, "bus: binding an address other than 127.0.0.1 needs --bind-any"},
    {-122, "bus: address already in use (another stage bound it, or a connection holds it as its local port: "
           "tcp ports below the kernel's ephemeral range, /proc/sys/net/ipv4/ip_local_port_range, avoid the latter)"},
    // store (store/store.h)
    {-201, "store: not an LMDB latent cache (missing, not a directory, or not LMDB)"},
    {-202, "store: LMDB environment without a __meta__ record (not a latent cache)"},
    {-203, "store: cache metadata malformed or incompatible"},
    {-204, "store: cache was encoded with a different tokenizer checkpoint"},
    {-205, "store: cache latent shape or dtype differs from the expected one"},
    {-206, "store: record size disagrees with its header or the cache layout"},
    {-207, "store: corrupt record header (not the expected msgpack map)"},
    {-208, "store: index already cached with different content"},
    {-209, "store: index not in the cache"},
    {-210, "store: LMDB error"},
    {-211, "store: cache opened read-only"},
    {-212, "store: cache holds no flipped variants"},
    {-213, "store: cache has no normalisation statistics yet"},
    {-214, "store: map must grow while a read transaction is open"},
    {-215, "store: index above STORE_MAX_INDEX"},
    {-216, "store: cache holds a key that is neither an index nor __meta__"},
    {-217, "store: cache map would have to grow past its configured cap"},
    {-218, "store: data.mdb is truncated (shorter than the pages LMDB says it holds)"},
    {-219, "store: record label outside the dataset's class range"},
    {-220, "store: cache is damaged (inconsistent LMDB pages; restore it or encode it again)"},
    // checkpoints and safetensors (nn/safetensors.h)
    {-301, "checkpoint: file truncated: shorter than its header says"},
    {-302, "checkpoint: safetensors header is not valid JSON"},
    {-303, "checkpoint: safetensors header entry has the wrong structure"},
    {-304, "checkpoint: tensor dtype not supported"},
    {-305, "checkpoint: tensor data offsets out of range, overlapping or leaving gaps"},
    {-306, "checkpoint: tensor shape x dtype size does not match its byte length"},
    {-307, "checkpoint: duplicate tensor name"},
    {-308, "checkpoint: tensor missing from file"},
    {-309, "checkpoint: file has tensors the model does not know"},
    {-310, "checkpoint: tensor shape differs from the model's"},
    {-311, "checkpoint: safetensors metadata malformed or incomplete"},
    {-312, "checkpoint: safetensors header too large"},
    // data readers (data/data_error.h)
    {-401, "data: wrong magic number (not the expected file type)"},
    {-402, "data: file is truncated (ends before the data its header promises)"},
    {-403, "data: gzip stream is corrupt (bad deflate data or CRC)"},
    {-404, "data: image decoder rejected the file (corrupt PNG/JPEG)"},
    {-405, "data: image/array dimensions are zero, too large or unsupported"},
    {-406, "data: images and labels disagree (count or size)"},
    {-407, "data: no usable images found"},
    {-408, "data: unexpected bytes after the end of the data"},
    {-409, "data: photo bank not present (run scripts/photos.sh)"},
    {-410, "data: label outside the class range"},
    {-411, "data: file is empty"},
    {-412, "data: not a regular file (a directory or a device)"},
    {-413, "data: archive member corrupt (CRC mismatch) or compressed (unsupported)"},
    // models (models/toy_mlp.h, models/lightningdit.h, models/sampler.h)
    {-501, "toy: checkpoint holds another model or a bad architecture"},
    {-502, "toy: data of the wrong dimension"},
    {-503, "toy: invalid configuration value"},
    {-540, "lightningdit: invalid configuration"},
    {-541, "lightningdit: batch size outside 1..Bmax"},
    {-542, "lightningdit: class label outside [0, num_classes]"},
    {-560, "sampler: invalid sampler options"},
    // nn/cuda (nn/cuda/vcuda.h)
    {-600, "cuda: no CUDA device available"},
    {-601, "cuda: CUDA runtime error"},
    {-602, "cuda: cuBLAS error"},
    {-603, "cuda: cuDNN error"},
    {-604, "cuda: out of device memory"},
    // op dispatch (nn/backend.h)
    {-620, "nn: op has no CUDA implementation"},
    {-621, "nn: device memory in a build without CUDA"},
    {-622, "nn: op called with host and device pointers mixed"},
    {-623, "nn: device pointers but no CUDA context on this thread"},
    {-624, "nn: too many device allocations registered"},
    // device choice (nn/device.h)
    {-650, "device: unknown device (expected cpu or cuda)"},
    {-651, "device: this build has no CUDA support (nvcc was not found at build time)"},
    {-652, "device: CUDA requested but no GPU found"},
    {-653, "device: the CUDA context could not be created"},
    {-654, "device: device memory used but no device is active on this thread"},
    {-655, "device: a copy or fill on the device failed"},
    // dist (dist/dist.h)
    {-670, "dist: rank environment variables missing, malformed or inconsistent"},
    {-671, "dist: collective library could not be loaded"},
    {-672, "dist: collective operation failed"},
    {-673, "dist: timed out waiting for the NCCL id file"},
    {-674, "dist: distributed backend unknown or not built"},
    // metrics (metrics/refstats.h)
    {-701, "metrics: statistics were computed with another feature network"},
    {-702, "metrics: reference statistics file is inconsistent"},
};

const char *vel_error_library(int code) {
    for (size_t i = 0; i < sizeof k_ranges / sizeof k_ranges[0]; i++)
        if (code <= k_ranges[i].hi && code >= k_ranges[i].lo) return k_ranges[i].name;
    return NULL;
}

static _Thread_local char t_unknown[96];

const char *vel_strerror(int code) {
    for (size_t i = 0; i < sizeof k_messages / sizeof k_messages[0]; i++)
        if (k_messages[i].code == code) return k_messages[i].msg;
    const char *lib = vel_error_library(code);
    if (lib) snprintf(t_unknown, sizeof t_unknown, "%s: error code %d", lib, code);
    else snprintf(t_unknown, sizeof t_unknown, "unknown error code %d", code);
    return t_unknown;
}

const char *vel_errmsg(int code) {
    const char *m = vel_strerror(code);
    if (code != 0 && code == t_code && t_detail[0]) {
        snprintf(t_msg, sizeof t_msg, "%s: %s", m, t_detail);
        return t_msg;
    }
    return m;
}

int vel_exit_code(int code) {
    // Runtime failures: the input was fine, the machine or a peer was not.
    static const int runtime[] = {
        -1, -2,                               // ENOMEM, EIO
        -100, -111, -113, -115, -116, -117,   // bus: timeout, zmq, interrupted, eos, abort, idle,
        -122,                                 //   address in use
        -210, -211, -214, -217,               // store: LMDB, read-only, busy, map cap
        -600, -601, -602, -603, -604,         // cuda
        -620, -621, -622, -623, -624,         // op dispatch
        -653, -654, -655,                     // device context, copies
        -671, -672, -673,                     // dist: library, collective, id file timeout
    };
    if (code == 0) return 0;
    for (size_t i = 0; i < sizeof runtime / sizeof runtime[0]; i++)
        if (runtime[i] == code) return 1;
    return code < 0 ? 2 : 1;
}
