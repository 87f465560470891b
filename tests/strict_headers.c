/* Compiled, never run, by the headers-* tests (tests/meson.build): the public
 * headers must build in strict ISO C with no feature-test macro defined. */
#include <asyncstd/asyncstd.h>

int main(void) { return 0; }
