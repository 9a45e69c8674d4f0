#ifndef CARELEDGER_CEPOLL_SHIM_H
#define CARELEDGER_CEPOLL_SHIM_H
// Glibc's Swift module leaves out <sys/epoll.h>; the database event loop needs it.
#include <sys/epoll.h>
#endif
