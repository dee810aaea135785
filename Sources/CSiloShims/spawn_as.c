// fork(2) + execve(2) as another uid: posix_spawn cannot change credentials. Only async-signal-safe
// calls run between fork and exec; a failure there is reported through a close-on-exec pipe.
#define _GNU_SOURCE
#include "silo_shims.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <unistd.h>

pid_t silo_spawn_as(const char *path, char *const argv[], char *const envp[], uid_t uid, gid_t gid, int *child_errno) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) { *child_errno = errno; return -1; }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        int e = 0;
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        int resets[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE };
        for (unsigned i = 0; i < sizeof resets / sizeof resets[0]; i++) sigaction(resets[i], &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        if (setpgid(0, 0) != 0) e = errno;
        else if (setgroups(0, NULL) != 0) e = errno;
        else if (setgid(gid) != 0) e = errno;
        else if (setuid(uid) != 0) e = errno;
        if (e == 0) {
            pthread_sigmask(SIG_SETMASK, &none, NULL);
            execve(path, argv, envp);
            e = errno;
        }
        (void)!write(pipefd[1], &e, sizeof e);
        _exit(127);
    }
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(pipefd[1]);
    if (pid < 0) { close(pipefd[0]); *child_errno = saved; return -1; }
    int e = 0;
    ssize_t n;
    do { n = read(pipefd[0], &e, sizeof e); } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    *child_errno = n == sizeof e ? e : 0;
    return pid;
}
