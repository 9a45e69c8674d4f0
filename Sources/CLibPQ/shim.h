#ifndef CARELEDGER_CLIBPQ_SHIM_H
#define CARELEDGER_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
