// errors.h: the bus module's error codes (range -100..-199, core/error.h; the
// messages are in core/error.c's table). Shared codes (-1..-99) may also be
// returned.
#ifndef BUS_ERRORS_H
#define BUS_ERRORS_H

enum {
    BUS_ETIMEOUT = -100,  // no message within the timeout (not a fault)
    BUS_EHDRSIZE = -101,  // header frame empty or larger than the header cap
    BUS_EMSGPACK = -102,  // header is not well-formed msgpack (truncated, garbage, trailing bytes)
    BUS_EVERSION = -103,  // unknown schema version `v`
    BUS_EFIELD = -104,    // a field is missing, duplicated or of the wrong type
    BUS_EDTYPE = -105,    // unknown dtype name
    BUS_ERANK = -106,     // tensor rank > TENSOR_MAX_DIMS
    BUS_ESHAPE = -107,    // negative dimension or shape product overflows
    BUS_EFRAMES = -108,   // frame count != 1 + number of tensors (or too many)
    BUS_ESIZE = -109,     // payload frame length != shape product x dtype size
    BUS_ETOOBIG = -110,   // message larger than the total size cap
    BUS_EZMQ = -111,      // a ZeroMQ call failed (errno / zmq_strerror says more)
    BUS_EENDPOINT = -112, // endpoint not understood (ipc://PATH, inproc://NAME, tcp://HOST:PORT)
    BUS_EINTR = -113,     // interrupted by a signal or the context is terminating
    BUS_ENAME = -114,     // a name or kind is empty, too long, or repeated
    BUS_EEOS = -115,      // every producer has ended (bus_inbox_next, bus_sink_next; not a fault)
    BUS_EABORT = -116,    // the source sent an abort: the run is over, stop
    BUS_EIDLE = -117,     // nothing received for longer than the idle timeout
    BUS_EUNEXPECTED = -118, // well-formed message of an unexpected kind, dtype or shape
    BUS_EUNISSUED = -119, // item (src, id) that no known source issued
    BUS_EPORT = -120,     // tcp port not a number in 1..65535 (or * on bind)
    BUS_EREMOTE = -121,   // binding an address other than 127.0.0.1 without allow_remote
    BUS_EADDRINUSE = -122, // the address is already bound (by another process)
    BUS_ECODE_MIN = -122, // lowest code in use (for per-code counters)
};

// Number of distinct bus codes (index = -(code) - 100).
#define BUS_NCODES (-(BUS_ECODE_MIN) - 100 + 1)


#endif
