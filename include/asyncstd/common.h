/** \file
 * Macros shared by every public asyncstd header. */
#ifndef ASYNCSTD_COMMON_H
#define ASYNCSTD_COMMON_H

#if defined(ASYNCSTD_BUILDING) && defined(__GNUC__)
#define ASYNC_EXTERN __attribute__((visibility("default")))
#else
/** Marks a symbol exported from libasyncstd (the library is built with -fvisibility=hidden). */
#define ASYNC_EXTERN
#endif

#if defined(__GNUC__)
#define ASYNC_WARN_UNUSED __attribute__((warn_unused_result))
#else
/** Asks the compiler to warn when a result that owns something (a future) is dropped. */
#define ASYNC_WARN_UNUSED
#endif

#endif
