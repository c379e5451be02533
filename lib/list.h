/*
 * list.h - circular doubly-linked lists threaded through the structures they link
 * (struct page's lru, a VMA's anon_vma_chain ...).  An empty list points at itself.
 */
#ifndef COWVM_LIST_H
#define COWVM_LIST_H

#include <stddef.h>
#include <stdbool.h>

struct list_head {
	struct list_head *next, *prev;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(head, type, member) list_entry((head)->next, type, member)

static inline void INIT_LIST_HEAD(struct list_head *head)
{
	head->next = head;
	head->prev = head;
}

static inline bool list_empty(const struct list_head *head)
{
	return head->next == head;
}

/* Put node between two neighbours that are next to each other. */
static inline void list_insert_between(struct list_head *node, struct list_head *before,
				       struct list_head *after)
{
	node->prev = before;
	node->next = after;
	before->next = node;
	after->prev = node;
}

static inline void list_add(struct list_head *node, struct list_head *head)
{
	list_insert_between(node, head, head->next);
}

static inline void list_add_tail(struct list_head *node, struct list_head *head)
{
	list_insert_between(node, head->prev, head);
}

static inline void list_del(struct list_head *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->next = node->prev = node;
}

#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

#define list_for_each_entry(pos, head, member)                                   \
	for ((pos) = list_entry((head)->next, __typeof__(*(pos)), member);       \
	     &(pos)->member != (head);                                           \
	     (pos) = list_entry((pos)->member.next, __typeof__(*(pos)), member))

#define list_for_each_entry_safe(pos, tmp, head, member)                         \
	for ((pos) = list_entry((head)->next, __typeof__(*(pos)), member),       \
	    (tmp) = list_entry((pos)->member.next, __typeof__(*(pos)), member);  \
	     &(pos)->member != (head);                                           \
	     (pos) = (tmp), (tmp) = list_entry((tmp)->member.next, __typeof__(*(tmp)), member))

#endif
