// The commit silo was built from, given by the build (make: -Xcc -DSILO_COMMIT="\"<sha>\"").
#include "silo_shims.h"

#ifndef SILO_COMMIT
#define SILO_COMMIT "unknown"
#endif

const char *silo_build_commit(void) { return SILO_COMMIT; }
