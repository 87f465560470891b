/** \file
 * The umbrella header: includes every asyncstd module. */
#ifndef ASYNCSTD_H
#define ASYNCSTD_H

#include "debug.h"
#include "fs.h"
#include "future.h"
#include "net.h"
#include "proc.h"
#include "signal.h"
#include "stats.h"
#include "stream.h"
#include "sync.h"
#include "task.h"

#endif
