/*
 * lock.h - the locks cowvm uses, named as Linux names them.
 *  spinlock_t:  short critical sections (zone, per-CPU lists, page-table lock, LRU);
 *  rw_semaphore: mmap_lock and the anon_vma lock (sleeping reader/writer lock);
 *  bug():        a broken invariant stops the program with "function: reason".
 */
#ifndef COWVM_LOCK_H
#define COWVM_LOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
	atomic_flag locked;
} spinlock_t;

#define SPINLOCK_INIT { ATOMIC_FLAG_INIT }

static inline void spin_lock_init(spinlock_t *lock)
{
	atomic_flag_clear(&lock->locked);
}

static inline void spin_lock(spinlock_t *lock)
{
	while (atomic_flag_test_and_set_explicit(&lock->locked, memory_order_acquire)) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
}

static inline void spin_unlock(spinlock_t *lock)
{
	atomic_flag_clear_explicit(&lock->locked, memory_order_release);
}

struct rw_semaphore {
	pthread_rwlock_t rw;
};

static inline void init_rwsem(struct rw_semaphore *sem) { pthread_rwlock_init(&sem->rw, NULL); }
static inline void destroy_rwsem(struct rw_semaphore *sem) { pthread_rwlock_destroy(&sem->rw); }
static inline void down_read(struct rw_semaphore *sem) { pthread_rwlock_rdlock(&sem->rw); }
static inline void up_read(struct rw_semaphore *sem) { pthread_rwlock_unlock(&sem->rw); }
static inline bool down_read_trylock(struct rw_semaphore *sem) { return pthread_rwlock_tryrdlock(&sem->rw) == 0; }
static inline void down_write(struct rw_semaphore *sem) { pthread_rwlock_wrlock(&sem->rw); }
static inline void up_write(struct rw_semaphore *sem) { pthread_rwlock_unlock(&sem->rw); }

#define bug(...)                                                                  \
	do {                                                                      \
		fprintf(stderr, "cowvm BUG: %s: ", __func__);                     \
		fprintf(stderr, __VA_ARGS__);                                     \
		fputc('\n', stderr);                                              \
		abort();                                                          \
	} while (0)

#define BUG_ON(cond)                                                              \
	do {                                                                      \
		if (__builtin_expect(!!(cond), 0))                                \
			bug("%s", #cond);                                         \
	} while (0)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
