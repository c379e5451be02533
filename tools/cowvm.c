/*
 * cowvm.c - main() of the cowvm program, and nothing else: it picks the subcommand.  Everything
 * it calls lives in other tools/ files, so that the tests can link them without this main.
 */
#include <string.h>

#include "commands.h"
#include "host/compare.h"

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return run_command(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "compare"))
		return compare_command(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "demo"))
		return demo_command(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
			  !strcmp(argv[1], "help"))) {
		cowvm_usage(stdout);
		return 0;
	}
	cowvm_usage(stderr);
	return 2;
}
