// Signal forwarding for `silo exec`. Everything here is async-signal-safe: the handler only reads
// and writes sig_atomic_t values and calls kill(2).
#include "silo_shims.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t target_pgid = 0;
static volatile sig_atomic_t pending_signal = 0;
static volatile sig_atomic_t last_signal = 0;

static void forward(int sig) {
    last_signal = sig;
    pid_t pgid = (pid_t)target_pgid;
    if (pgid > 0) {
        kill(-pgid, sig);
    } else {
        pending_signal = sig;
    }
}

void silo_install_forwarding_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    // A parent may have started silo with these blocked (Foundation's Process does, and the mask is
    // inherited across exec): a blocked SIGTERM would stay pending and never reach the job.
    sigset_t forwarded;
    sigemptyset(&forwarded);
    sigaddset(&forwarded, SIGINT);
    sigaddset(&forwarded, SIGTERM);
    sigaddset(&forwarded, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &forwarded, NULL);
}

void silo_forward_signals_to(pid_t pgid) {
    target_pgid = pgid;
    int sig = pending_signal;
    if (sig != 0) {
        pending_signal = 0;
        kill(-pgid, sig);
    }
}

int silo_last_forwarded_signal(void) { return last_signal; }
