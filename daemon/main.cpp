#include "daemon/cli/cli.hpp"

int main(int argc, char** argv) { return ipopsec::runCli(argc, argv); }
