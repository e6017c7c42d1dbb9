// fault_guard.c: a damaged data.mdb becomes an error exit, not a crash.
//
// LMDB trusts its file: a page whose node offsets or sizes were damaged
// (a bit flip, a bad copy) makes mdb_cursor_get follow a wild pointer and
// the reader dies of SIGSEGV, and a file cut short under the map raises
// SIGBUS. Checking every page ourselves would mean re-implementing LMDB's
// format; instead, while one of this thread's read transactions is open, a
// SIGSEGV or SIGBUS ends the process with exit status 2 and one line naming
// the cache. Outside read transactions the handler steps aside: it puts the
// previous action back (the default, or a sanitizer's) and returns, so the
// fault repeats and is handled exactly as without this file.
// The guard is per thread, entered and left with each read transaction
// (store_rtxn_begin/end); the API lets another thread end a store_txn, which
// would leave the beginning thread guarded (its later faults then reported
// as a damaged cache). Nothing in the project does that.
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "store/internal.h"

static _Thread_local const char *guarded_path;   // the cache of the open read txn(s)
static _Thread_local int guard_depth;
static struct sigaction previous_segv, previous_bus;

static void say(const char *s) {
    ssize_t w = write(STDERR_FILENO, s, strlen(s));
    (void)w;
}

static void on_fault(int sig, siginfo_t *info, void *ctx) {
    (void)info, (void)ctx;
    if (!guarded_path) {
        sigaction(sig, sig == SIGBUS ? &previous_bus : &previous_segv, NULL);
        return;   // the faulting instruction runs again under the previous action
    }
    // Only async-signal-safe calls from here on.
    say("store: ");
    say(guarded_path);
    say(sig == SIGBUS ? ": reading the cache hit the end of its file (data.mdb shrank or was cut short)"
                      : ": reading the cache faulted inside LMDB (data.mdb is most likely damaged)");
    say("; restore it or encode it again (store-info --verify checks a cache)\n");
    _exit(2);
}

static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;   // the signal stays blocked inside: a fault there kills outright
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
}

void store_guard_enter(const char *path) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install);
    if (guard_depth++ == 0) guarded_path = path;
}

void store_guard_leave(void) {
    if (guard_depth > 0 && --guard_depth == 0) guarded_path = NULL;
}
