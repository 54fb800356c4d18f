/* The connection limits' bookkeeping: per address and in all, released as connections
 * end, addresses forgotten when their last connection ends. */
#include "../check.h"

#include "../../../gateway/limits.h"

static const unsigned char a1[16] = {[10] = 0xff, [11] = 0xff, 127, 0, 0, 1};
static const unsigned char a2[16] = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 2};
static const unsigned char a6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};

int main(void)
{
	struct rg_conn_limits l;
	struct rg_peer *p[8];
	const char *why = NULL;

	rg_conn_limits_init(&l, 5, 2);
	CHECK(rg_conn_limits_admit(&l, a1, &p[0], &why) == 0);
	CHECK(rg_conn_limits_admit(&l, a1, &p[1], &why) == 0 && p[1] == p[0]);
	CHECK(rg_conn_limits_admit(&l, a1, &p[2], &why) == -1 && strstr(why, "per_address"));
	CHECK(rg_conn_limits_admit(&l, a2, &p[2], &why) == 0 && p[2] != p[0]);
	CHECK(rg_conn_limits_admit(&l, a6, &p[3], &why) == 0);
	CHECK(rg_conn_limits_admit(&l, a6, &p[4], &why) == 0);
	CHECK(l.total == 5);
	why = NULL;
	CHECK(rg_conn_limits_admit(&l, a2, &p[5], &why) == -1 &&
	      !strcmp(why, "limits.max_connections reached"));
	rg_conn_limits_release(&l, p[0]);
	CHECK(l.total == 4 && p[1]->conns == 1);
	CHECK(rg_conn_limits_admit(&l, a1, &p[0], &why) == 0);
	/* the last connection of an address forgets it */
	rg_conn_limits_release(&l, p[2]);
	CHECK(HASH_COUNT(l.peers) == 2);
	for (int i = 0; i < 2; i++) {
		rg_conn_limits_release(&l, p[i]);
		rg_conn_limits_release(&l, p[3 + i]);
	}
	CHECK(l.total == 0 && l.peers == NULL);
	/* 0: no limit */
	rg_conn_limits_init(&l, 0, 0);
	for (int i = 0; i < 3000; i++) {
		struct rg_peer *q;
		CHECK(rg_conn_limits_admit(&l, a1, &q, &why) == 0);
	}
	CHECK(l.total == 3000 && HASH_COUNT(l.peers) == 1);
	rg_conn_limits_cleanup(&l);
	CHECK(l.peers == NULL && l.total == 0);

	/* check says what admit would, and changes nothing */
	rg_conn_limits_init(&l, 0, 1);
	CHECK(rg_conn_limits_check(&l, a1, &why) == 0 && l.peers == NULL);
	CHECK(rg_conn_limits_admit(&l, a1, &p[0], &why) == 0);
	CHECK(rg_conn_limits_check(&l, a1, &why) == -1 && l.total == 1);
	CHECK(rg_conn_limits_check(&l, a2, &why) == 0);

	/* an address that published keeps its bucket past its last connection, until the
	 * bucket is full again */
	uint32_t retry = 0;
	CHECK(rg_bucket_take(&p[0]->publishes, 2, 1000000, &retry) == 1);
	rg_conn_limits_release(&l, p[0]);
	CHECK(HASH_COUNT(l.peers) == 1 && l.total == 0);
	CHECK(rg_conn_limits_sweep(&l, 1500000) == 0);
	CHECK(rg_conn_limits_admit(&l, a1, &p[1], &why) == 0);
	CHECK(rg_bucket_take(&p[1]->publishes, 2, 1000001, &retry) == 1);
	CHECK(rg_bucket_take(&p[1]->publishes, 2, 1000002, &retry) == 0 && retry > 0);
	rg_conn_limits_release(&l, p[1]);
	CHECK(rg_conn_limits_sweep(&l, 2000002) == 1 && l.peers == NULL);

	/* one that made rooms keeps its room bucket for the minute it takes to refill */
	CHECK(rg_conn_limits_admit(&l, a1, &p[0], &why) == 0);
	CHECK(rg_bucket_take_per(&p[0]->rooms, 2, RG_ROOMS_PERIOD_US, 3000000, &retry) == 1);
	CHECK(rg_bucket_take_per(&p[0]->rooms, 2, RG_ROOMS_PERIOD_US, 3000000, &retry) == 1);
	CHECK(rg_bucket_take_per(&p[0]->rooms, 2, RG_ROOMS_PERIOD_US, 3000000, &retry) == 0);
	CHECK(retry >= 30000 && retry <= 30001); /* half a minute for one of 2 a minute */
	rg_conn_limits_release(&l, p[0]);
	CHECK(rg_conn_limits_sweep(&l, 3000000 + RG_ROOMS_PERIOD_US - 1) == 0);
	CHECK(rg_conn_limits_sweep(&l, 3000000 + RG_ROOMS_PERIOD_US) == 1 && l.peers == NULL);
	rg_conn_limits_cleanup(&l);

	/* the bucket: rate a second, a second's burst, refilled over time */
	struct rg_bucket b = {0};
	int taken = 0;
	for (int i = 0; i < 20; i++)
		taken += rg_bucket_take(&b, 10, 5000000, &retry);
	CHECK(taken == 10);
	CHECK(rg_bucket_take(&b, 10, 5000000, &retry) == 0 && retry >= 99 && retry <= 101);
	CHECK(rg_bucket_take(&b, 10, 5100000, &retry) == 1); /* 100 ms: one token back */
	CHECK(rg_bucket_take(&b, 10, 5100000, &retry) == 0);
	CHECK(rg_bucket_take(&b, 10, 9000000, &retry) == 1); /* idle: full again */
	CHECK(rg_bucket_take(&b, 0, 9000000, &retry) == 1);  /* 0: no limit */
	return check_done("limits");
}
