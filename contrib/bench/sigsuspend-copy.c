/* Preloaded into the daemon when it runs under valgrind (contrib/bench/instructions.sh).
 * libdispatch's main thread waits in sigsuspend() with a mask kept in read-only memory;
 * valgrind 3.19 edits that mask in place and dies of the fault. This copy hands the
 * kernel a mask on the stack instead; the daemon's behaviour is unchanged. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, _NSIG / 8);
}
