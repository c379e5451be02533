/*
 * vmstat.c - the machine's event counters and page-state counts, kept in one slot per host
 * thread so that counting costs no locked instruction on the fault path (Linux keeps them per
 * CPU for the same reason).  A thread claims a slot at its first count and gives it back when
 * it exits; what it counted stays in the slot and is summed by every reader.
 */
#include "mm.h"

__thread int stat_slot __attribute__((tls_model("initial-exec"))) = -1;

static _Atomic uint64_t slots_in_use; /* bit n: slot n has an owner */
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void stat_slot_release(void *arg)
{
	int slot = (int)(intptr_t)arg - 1;
	atomic_fetch_and_explicit(&slots_in_use, ~(1ull << slot), memory_order_release);
}

static void slot_key_create(void)
{
	pthread_key_create(&slot_key, stat_slot_release);
}

int stat_slot_claim(void)
{
	pthread_once(&slot_once, slot_key_create);
	uint64_t used = atomic_load_explicit(&slots_in_use, memory_order_acquire);
	while (~used) {
		int slot = __builtin_ctzll(~used);
		if (atomic_compare_exchange_weak_explicit(&slots_in_use, &used, used | (1ull << slot),
							  memory_order_acq_rel, memory_order_acquire)) {
			pthread_setspecific(slot_key, (void *)(intptr_t)(slot + 1));
			stat_slot = slot;
			return slot;
		}
	}
	return NR_STAT_SLOTS; /* all taken: count in the shared slot, atomically; retry next time */
}

uint64_t global_vm_event(struct cowvm *vm, enum vm_event_item item)
{
	uint64_t sum = 0;
	for (int s = 0; s <= NR_STAT_SLOTS; s++)
		sum += atomic_load_explicit(&vm->stats[s].events[item], memory_order_relaxed);
	return sum;
}

long global_node_page_state(struct cowvm *vm, enum node_stat_item item)
{
	long sum = 0;
	for (int s = 0; s <= NR_STAT_SLOTS; s++)
		sum += atomic_load_explicit(&vm->stats[s].node[item], memory_order_relaxed);
	return sum;
}
