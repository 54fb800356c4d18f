/*
 * The admin API's documents (docs/PROTOCOL.md, "Admin API"): rooms with their counters,
 * one room's state with its members. The actions it takes are the registry's
 * (rg_registry_close_room, rg_registry_kick) and the room's (rg_room_drop_history).
 * Who may call it is the transport's to check: backends only.
 *
 * The texts are JSON, malloc'd, the caller's to free; NULL when out of memory.
 */
#ifndef RG_ADMIN_H
#define RG_ADMIN_H

#include "registry.h"

/* Members listed in a room's state at most; past them, "members_more" counts the rest. */
#define RG_ADMIN_MEMBERS_MAX 1000

/* {"rooms": [ROOM, ...]}: every room alive, with its counters. */
char *rg_admin_rooms(const struct rg_registry *reg);
/* ROOM with its config and members ({"conn", "transport", "user", "next_seq"}). */
char *rg_admin_room(const struct rg_room *room);

#endif
