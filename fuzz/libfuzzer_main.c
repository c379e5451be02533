/*
 * libfuzzer_main.c - the libFuzzer entry point (also usable by AFL++, which builds libFuzzer
 * harnesses): the input bytes are the source of every choice fuzz_gen makes - which operation,
 * which task, which page, how long, which bytes - so a mutation of a few bytes changes a few
 * operations.  At most 2000 operations per input on a 4 MiB machine, cowvm_check after every
 * 8th and a full comparison after every 64th (throughput buys coverage here; fuzz-smoke checks
 * after every step); at the end everything is compared, every task exits, every pin is
 * dropped and no frame may be left behind.
 *
 * A divergence prints what differed and the operations played (the text form that
 * `fuzz-smoke --replay FILE` reads) and aborts, which libFuzzer reports as a crash and saves.
 * FUZZ_AVOID in the environment keeps known divergences out of the inputs (see driver.h).
 *
 * Built with -DFUZZ_STANDALONE it gets a main() that runs the files named on its command line,
 * for replaying a corpus without the libFuzzer runtime.
 */
#include <stdio.h>
#include <stdlib.h>

#include "driver.h"

#define MAX_OPS 2000

/* Any UBSan report is a crash (libFuzzer saves the input). */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int avoid_read;
	static unsigned avoid;
	if (!avoid_read) {
		const char *env = getenv("FUZZ_AVOID");
		avoid = env && *env ? fuzz_parse_avoid(env) : FUZZ_KNOWN;
		if (avoid == ~0u) {
			fprintf(stderr, "fuzz-cowvm: bad FUZZ_AVOID=%s\n", env);
			abort();
		}
		avoid_read = 1;
	}
	struct fuzz_config cfg;
	fuzz_config_default(&cfg);
	cfg.phys_bytes = 4ull << 20;
	cfg.nr_cpus = size && (data[0] & 0x80) ? 2 : 1;
	cfg.check_every = 8;    /* executions per second matter more here: fuzz-smoke checks */
	cfg.compare_every = 64; /* after every step; the end of each input checks everything */
	cfg.avoid = avoid;
	struct fuzz_run *r = fuzz_run_new(&cfg);
	if (!r)
		abort();
	struct fuzz_src src;
	fuzz_src_bytes(&src, data, size);
	for (int i = 0; i < MAX_OPS && !r->failed; i++) {
		struct fuzz_op op;
		if (fuzz_gen(r, &src, &op))
			break;
		fuzz_exec(r, &op);
	}
	if (!r->failed)
		fuzz_finish(r);
	if (r->failed) {
		fprintf(stderr, "fuzz-cowvm: operation %zu: [%s] %s\n", r->fail_index, r->fail_class, r->why);
		fprintf(stderr, "# cowvm fuzz ops phys=%llu cpus=%u\n",
			(unsigned long long)r->cfg.phys_bytes, r->cfg.nr_cpus);
		fuzz_print_ops(stderr, r->log, r->nlog);
		abort();
	}
	fuzz_run_free(r);
	return 0;
}

#ifdef FUZZ_STANDALONE
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 2;
		}
		static uint8_t buf[1 << 20];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
		printf("%s: clean\n", argv[i]);
	}
	return 0;
}
#endif
