// data_error.c: messages for the data readers' error codes (see data_error.h).
#include "data/data_error.h"

#include "core/base.h"

const char *data_strerror(int err) {
    switch (err) {
    case DATA_EMAGIC: return "data: wrong magic number (not the expected file type)";
    case DATA_ETRUNC: return "data: file is truncated (ends before the data its header promises)";
    case DATA_EGZIP: return "data: gzip stream is corrupt (bad deflate data or CRC)";
    case DATA_EDECODE: return "data: image decoder rejected the file (corrupt PNG/JPEG)";
    case DATA_EDIMS: return "data: image/array dimensions are zero, too large or unsupported";
    case DATA_EMISMATCH: return "data: images and labels disagree (count or size)";
    case DATA_EEMPTY: return "data: no usable images found";
    case DATA_ETRAILING: return "data: unexpected bytes after the end of the data";
    case DATA_ENOPHOTOS: return "data: photo bank not present (run scripts/photos.sh)";
    case DATA_ELABEL: return "data: label outside the class range";
    default: return vel_strerror(err);
    }
}
