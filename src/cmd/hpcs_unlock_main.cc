// hpcs-unlock: the boot-time unlocker. Everything lives in the core library.
#include "cmd/hpcs_unlock.h"

int main(int argc, char** argv) { return hpcs::UnlockMain(argc, argv); }
