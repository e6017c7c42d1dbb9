// data_error.h: error codes of the data readers (range -400..-499,
// core/error.h; their messages are in core/error.c's table). Details
// (which file, which index) go through vel_fail / vel_error_detail.
// Not here: the readers themselves (data/idx.h, data/image_io.h, ...).
#ifndef DATA_DATA_ERROR_H
#define DATA_DATA_ERROR_H

#include "core/base.h"   // the shared VEL_* codes the readers also return

enum {
    DATA_EMAGIC = -401,    // file does not start with the expected magic
    DATA_ETRUNC = -402,    // file ends before the data its header promises
    DATA_EGZIP = -403,     // gzip stream corrupt (bad deflate data or CRC)
    DATA_EDECODE = -404,   // PNG/JPEG decoder rejected the bytes
    DATA_EDIMS = -405,     // dimensions zero, too large or unsupported
    DATA_EMISMATCH = -406, // images and labels disagree (count, size)
    DATA_EEMPTY = -407,    // a folder holds no usable images
    DATA_ETRAILING = -408, // bytes left over after the promised data
    DATA_ENOPHOTOS = -409, // photo bank not extracted (run scripts/photos.sh)
    DATA_ELABEL = -410,    // a label outside the class range
    DATA_EEMPTY_FILE = -411, // a file of zero bytes
    DATA_ENOTFILE = -412,  // a directory (or device) where a file was expected
    DATA_ECORRUPT = -413,  // archive member corrupt (CRC) or compressed in an unsupported way
};

#endif
