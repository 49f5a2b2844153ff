// hpcs-for-luks: the admin CLI. Its command layer is cmd/cli.cc and the verb table of
// cmd/cli_verbs.cc, over hpcs_admin (src/admin/) and the core library.
#include "cmd/cli.h"

int main(int argc, char** argv) { return hpcs::CliMain(argc, argv); }
