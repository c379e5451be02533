/*
 * run_command.c - `cowvm run [OPTIONS] FILE...` and the program's help texts.  Options are read
 * with getopt_long; each file then runs on its own fresh machine (scenario_run_file), and the
 * exit status is the worst of the files' (bad input 2 > failed 1 > ok 0).
 */
#include <errno.h>
#include <getopt.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "driver.h"
#include "lang/words.h"
#include "render/render.h"
#include "run/swapdev.h"

void cowvm_usage(FILE *f)
{
	fputs("usage: cowvm run [OPTIONS] FILE...   run scenario files (see `cowvm run --help`)\n"
	      "       cowvm compare FILE...         run them on cowvm and on the host kernel, and\n"
	      "                                     compare (see `cowvm compare --help`)\n"
	      "       cowvm demo                    the seeds' stories with a fault trace\n"
	      "       cowvm --help                  this text\n"
	      "\n"
	      "cowvm is Linux's anonymous memory and copy-on-write machinery in user space: demand\n"
	      "paging, the zero page, fork COW, do_wp_page reuse or copy, rmap, a software MMU and\n"
	      "copy_from_user with an exception table, GUP pins and /proc/pid/mem forced\n"
	      "writes.  Try:\n"
	      "       cowvm run --trace examples/fork-cow.cows\n"
	      "Scenario language: docs/scenarios.md.  Manual: man ./docs/cowvm.1\n"
	      "Exit status: 0 ok, 1 an expectation failed, 2 bad input.\n", f);
}

static void run_usage(FILE *f)
{
	fputs("usage: cowvm run [OPTIONS] FILE...\n"
	      "Run each scenario FILE (- for standard input) on a fresh machine and check its\n"
	      "expect lines.  The language is described in docs/scenarios.md.\n"
	      "\n"
	      "  --trace          print each line as it runs and the kernel's steps it takes: every\n"
	      "                   fault as its call tree (nesting as indentation, siblings in\n"
	      "                   order) with the facts each step found and the rule it chose\n"
	      "                   (why: reuse, copy, zero page, unshare ...); fork, exit, munmap,\n"
	      "                   mprotect, madvise, dput/dget and pin/unpin with their counts\n"
	      "  --trace=brief    one line per fault: the kernel path and the rule, e.g.\n"
	      "                   B write 0x7ffff7ffd000: handle_mm_fault > __handle_mm_fault >\n"
	      "                     handle_pte_fault > do_wp_page > wp_page_copy (frame 6 -> 11)  # copy\n"
	      "  --json           JSON lines instead of text (docs/json.md, schema 1): run, fault,\n"
	      "                   enter/leave/note (the steps), op, expect, view, echo, failure,\n"
	      "                   bad_input and summary events\n"
	      "  --show VIEW      when a scenario ends, show VIEW for every process; repeat it or\n"
	      "                   give a comma list: maps ptes smaps smaps_rollup pagemap status\n"
	      "                   vmstat frames graph\n"
	      "  --dot            when a scenario ends, write NAME.dot (processes -> VMAs -> pages\n"
	      "                   -> frames) and render NAME.svg if Graphviz's dot is installed\n"
	      "  --dot-steps      write NAME-stepN.dot (and .svg) for the state after every step N\n"
	      "  --dot-dir DIR    where --dot and --dot-steps write (default: the current\n"
	      "                   directory; it must exist)\n"
	      "  --html FILE      write the explorer: one self-contained HTML page for the run of\n"
	      "                   every FILE, a timeline of every step (arrow keys, clicks, the URL\n"
	      "                   fragment #step=N) showing each step's VMAs, PTEs, frames, the\n"
	      "                   sharing graph, what changed, the fault trees and expectations\n"
	      "  --swap FILE:SIZE give every machine a swap device: the host file FILE (created\n"
	      "                   and removed when it does not exist, else left in place) of SIZE\n"
	      "                   (a unit is required: 64M, 512K, 1G); it replaces a scenario's\n"
	      "                   own `swap SIZE` line.  Scenarios swap with `pageout P LOC`\n"
	      "  --thp K=V,...    the machine's transparent-huge-page policy, as the files of\n"
	      "                   /sys/kernel/mm/transparent_hugepage/: enabled=always|madvise|never,\n"
	      "                   defrag=always|defer|defer+madvise|madvise|never, use_zero_page=0|1\n"
	      "                   (default: this host's enabled=madvise defrag=madvise use_zero_page=1);\n"
	      "                   today it decides smaps THPeligible (huge mappings are not built yet)\n"
	      "  -h, --help       this text\n"
	      "\n"
	      "Failures and bad input are reported on standard error as FILE:LINE: message.\n"
	      "Exit status: 0 every expectation held; 1 an expectation failed (or an operation\n"
	      "failed with no `expect error` after it); 2 bad input: a malformed line, an unknown\n"
	      "name, an unreadable file.  With several files, the worst status wins.\n", f);
}

/* "maps,frames" -> bits; false on an unknown name. */
static bool add_views(const char *list, unsigned *bits)
{
	char *copy = strdup(list), *save = NULL;
	bool ok = copy != NULL;
	for (char *name = copy ? strtok_r(copy, ",", &save) : NULL; name; name = strtok_r(NULL, ",", &save)) {
		int v = view_by_name(name);
		if (v < 0) {
			fprintf(stderr, "cowvm run: unknown view '%s' (maps, ptes, smaps, smaps_rollup, "
					"pagemap, status, vmstat, frames, graph)\n", name);
			ok = false;
			break;
		}
		*bits |= 1u << v;
	}
	free(copy);
	return ok;
}

int run_command(int argc, char **argv)
{
	static const struct option options[] = {
		{ "trace", optional_argument, NULL, 't' },  { "json", no_argument, NULL, 'j' },
		{ "show", required_argument, NULL, 's' }, { "dot", no_argument, NULL, 'd' },
		{ "dot-dir", required_argument, NULL, 'D' }, { "help", no_argument, NULL, 'h' },
		{ "swap", required_argument, NULL, 'S' }, { "thp", required_argument, NULL, 'T' },
		{ "html", required_argument, NULL, 'H' }, { "dot-steps", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts opts = { .err = stderr };
	const char *html = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!optarg || !strcmp(optarg, "tree")) {
				opts.trace = true;
				opts.brief = false;
			} else if (!strcmp(optarg, "brief")) {
				opts.brief = true;
				opts.trace = false;
			} else {
				fprintf(stderr, "cowvm run: --trace=%s: say --trace (the call trees) or "
						"--trace=brief (one line per fault)\n", optarg);
				return 2;
			}
			break;
		case 'j': opts.json = true; break;
		case 's':
			if (!add_views(optarg, &opts.show_at_end))
				return 2;
			break;
		case 'd': opts.dot = true; break;
		case 'D': opts.dot_dir = optarg; break;
		case 'H': html = optarg; break;
		case 'P': opts.dot_steps = true; break;
		case 'S': {
			char why[160];
			if (!swapdev_parse_spec(optarg, &opts.swap_path, &opts.swap_bytes, why, sizeof why)) {
				fprintf(stderr, "cowvm run: --swap %s\n", why);
				return 2;
			}
			break;
		}
		case 'T': {
			char why[200];
			if (!thp_parse_spec(optarg, &opts.thp_flags, why, sizeof why)) {
				fprintf(stderr, "cowvm run: --thp %s\n", why);
				return 2;
			}
			break;
		}
		case 'h': run_usage(stdout); return 0;
		default:
			fprintf(stderr, "cowvm run: %s '%s' (see cowvm run --help)\n",
				c == ':' ? "missing argument for" : "unknown option", argv[optind - 1]);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "cowvm run: no scenario file given (see cowvm run --help)\n");
		return 2;
	}
	struct stat sb;
	int bad = !opts.dot_dir ? 0 : stat(opts.dot_dir, &sb) ? errno : !S_ISDIR(sb.st_mode) ? ENOTDIR : 0;
	if (bad) { /* bad input, before any scenario runs */
		fprintf(stderr, "cowvm run: --dot-dir %s: %s\n", opts.dot_dir, strerror(bad));
		return 2;
	}
	if (html) {
		int error = 0;
		if (!(opts.html = html_open(html, &error))) {
			fprintf(stderr, "cowvm run: --html %s: cannot write it: %s\n", html, strerror(error));
			return 2;
		}
	}
	int worst = RUN_OK;
	for (int i = optind; i < argc; i++) {
		int status = scenario_run_file(argv[i], &opts, stdout);
		if (status > worst)
			worst = status;
	}
	if (opts.html) {
		int error = html_close(opts.html);
		if (error) {
			fprintf(stderr, "cowvm run: --html %s: cannot write it: %s\n", html, strerror(error));
			return 2;
		}
		fprintf(stdout, "wrote %s (open it in a browser; #step=N selects a step)\n", html);
	}
	return worst;
}
