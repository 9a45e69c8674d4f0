#ifndef CARELEDGER_CEPOLL_SHIM_H
#define CARELEDGER_CEPOLL_SHIM_H
// Glibc's Swift module leaves out <sys/epoll.h> and <sys/eventfd.h>; the database event loops need
// both (the eventfd wakes a loop when work is queued for it from another thread).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <sys/syscall.h>

// The raw system calls, since glibc's wrappers and CPU_SET macros need _GNU_SOURCE, which Swift's Glibc
// module is not built with. One word of mask covers the first 64 CPUs; on a machine with more, the
// kernel refuses the short mask and the loops simply stay unpinned.

/// The CPUs the calling thread may run on, as a bit mask (0 if unknown).
static inline unsigned long careledger_allowed_cpus(void) {
    unsigned long mask = 0;
    return syscall(SYS_sched_getaffinity, 0, sizeof mask, &mask) > 0 ? mask : 0;
}

/// Restricts the calling thread to one CPU; 0 on success.
static inline int careledger_pin_thread(int cpu) {
    unsigned long mask = 1UL << cpu;
    return (int)syscall(SYS_sched_setaffinity, 0, sizeof mask, &mask);
}
#endif
