// hpcs-unlock: the boot-time unlocker. Its command is cmd/hpcs_unlock.cc (arguments, the
// kernel command line, exit codes), over the core library (src/core/ and below).
#include "cmd/hpcs_unlock.h"

int main(int argc, char** argv) { return hpcs::UnlockMain(argc, argv); }
