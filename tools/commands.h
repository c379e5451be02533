/*
 * commands.h - the subcommands of the cowvm program.  main() (tools/cowvm.c) only picks one;
 * each takes the arguments after its own name (argv[0] is the subcommand) and returns the exit
 * status: 0 ok, 1 an expectation failed, 2 bad input or usage.
 */
#ifndef COWVM_TOOLS_COMMANDS_H
#define COWVM_TOOLS_COMMANDS_H

#include <stdio.h>

int demo_command(int argc, char **argv); /* tools/demo.c */
int run_command(int argc, char **argv);  /* tools/run_command.c */
void cowvm_usage(FILE *f);               /* tools/run_command.c: `cowvm --help` */

#endif /* COWVM_TOOLS_COMMANDS_H */
