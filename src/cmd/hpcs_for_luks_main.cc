// hpcs-for-luks: the admin CLI. Everything lives in the core library.
#include "cmd/cli.h"

int main(int argc, char** argv) { return hpcs::CliMain(argc, argv); }
