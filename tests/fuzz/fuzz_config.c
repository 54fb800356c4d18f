/* libFuzzer: arbitrary bytes as a config file. Every input either loads or is refused
 * with at least one error line; nothing crashes or leaks. */
#include "../../gateway/config.h"

#include <stdint.h>
#include <stdlib.h>

static void count(void *ctx, const char *line)
{
	(void)line;
	(*(int *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int errors = 0;
	struct rg_config *cfg =
		rg_config_parse("fuzz.json", (const char *)data, size, count, &errors);
	if (!cfg && !errors)
		abort(); /* refused without saying why */
	rg_config_free(cfg);
	return 0;
}
