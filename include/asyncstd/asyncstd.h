/** \file
 * The umbrella header: includes every asyncstd module. */
#ifndef ASYNCSTD_H
#define ASYNCSTD_H

#include "future.h"
#include "task.h"
#include "fs.h"
#include "net.h"
#include "sync.h"

#endif
