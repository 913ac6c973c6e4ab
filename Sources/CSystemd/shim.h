#ifndef HOOKGATE_CSYSTEMD_SHIM_H
#define HOOKGATE_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#endif
