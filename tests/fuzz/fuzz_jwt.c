/* libFuzzer: arbitrary bytes as a token to verify (first byte even) or as a JWKS
 * document to load (odd). A token is accepted only with a valid signature, which
 * random bytes do not make; nothing crashes or leaks either way. */
#include "../../gateway/jwt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char jwks[] =
	"{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQ"
	"Lr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
	"\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStik"
	"YjKIWI5a0\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
	"7TyWQHOg7hcvPapiMlrwI"
	"aaPcHURo\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rg_jwt_keyring kr = {0};
	char err[256];

	if (!size)
		return 0;
	if (data[0] & 1) {
		if (rg_jwt_keyring_add_jwks(&kr, (const char *)data + 1, size - 1, err,
					    sizeof(err)) &&
		    (!err[0] || kr.n))
			abort(); /* refused without a reason, or half loaded */
		rg_jwt_keyring_free(&kr);
		return 0;
	}
	if (rg_jwt_keyring_add_jwks(&kr, jwks, strlen(jwks), err, sizeof(err)))
		abort();
	struct rg_jwt_check c = {.now = 1300819000, .leeway = 60, .max_bytes = 8192};
	const char *why = NULL;
	json_t *claims = NULL;
	int rc = rg_jwt_verify(&kr, (const char *)data + 1, size - 1, &c, &claims, &why);
	if ((rc == 0) != (claims != NULL) || (rc != 0) != (why != NULL))
		abort();
	json_decref(claims);
	rg_jwt_keyring_free(&kr);
	return 0;
}
