// error.c: bus_strerror. The message names the check that failed so a log
// line is enough to find the sender's mistake.
#include "bus/errors.h"

#include "core/base.h"

const char *bus_strerror(int err) {
    switch (err) {
    case BUS_ETIMEOUT: return "bus: no message within the timeout";
    case BUS_EHDRSIZE: return "bus: header frame empty or larger than the header size cap";
    case BUS_EMSGPACK: return "bus: header is not well-formed msgpack (truncated, garbage or trailing bytes)";
    case BUS_EVERSION: return "bus: unsupported header version 'v'";
    case BUS_EFIELD: return "bus: header field missing, repeated or of the wrong type";
    case BUS_EDTYPE: return "bus: unknown dtype (expected f32, bf16, f16, u8 or i32)";
    case BUS_ERANK: return "bus: tensor rank larger than 8";
    case BUS_ESHAPE: return "bus: negative dimension or shape product overflows";
    case BUS_EFRAMES: return "bus: frame count does not match the tensors named in the header";
    case BUS_ESIZE: return "bus: payload frame length differs from shape x dtype size";
    case BUS_ETOOBIG: return "bus: message larger than the total size cap";
    case BUS_EZMQ: return "bus: ZeroMQ call failed";
    case BUS_EENDPOINT: return "bus: endpoint not allowed (use ipc://, inproc:// or tcp://127.0.0.1; other tcp binds need allow_remote)";
    case BUS_EINTR: return "bus: interrupted (signal or context terminating)";
    case BUS_ENAME: return "bus: name or kind empty, too long or repeated";
    case BUS_EEOS: return "bus: end of stream (every producer has ended)";
    default: return vel_strerror(err);
    }
}
