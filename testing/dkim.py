"""A DKIM key for tests, and the DNS a verifier asks, answered from memory.

The key below is published here and signs nothing real: never configure it.
"""

from collections.abc import Callable

from delivery.deliverability.dkim import dns_record

# Generated with `openssl genrsa 2048`, for tests only.
TEST_PRIVATE_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCXnYcYk2osebGI
TqOMwwcU/ZOkffaGIAz9WNG9Bw9p+cxrhYnc7jrlmMBNVyaZUhs5/R1I9TmgjadM
w+RriGEUocEiYeUnx+hucbhxYw+f7B4uYwGbTiXBTWqQQ8sUJDg1lwdMTup0TaLg
j+uYUQLY88O5BkyhozvQRHC8YKFdj5sBVO4KFP+Dxq9z+ObHgGAGc0F+AGrldxZF
SOt+MP3F4y6Ss3rYWQzX3WUlbt//tSXcq9hGqj+X5bJ9+67RQJ/bqD4Tm79aTciF
n8qGVmZ5a1pF578nEzfbrjQNyGKFvq2Db7OCC8QTAI38hBV/cbEsviy8bIfj6ACi
yZpBV6L3AgMBAAECggEAD2BP/6uPpIQQ/7BuAMwUr0nKS+/kbRTaDGWSG9gX9Zj6
ZNstsKTOf1N/CTjx9rGvhjGH40rPddt34J6rT0aNBfEjq69+9IpfJbhNyt4PixoA
s5ah5pTF2nVV/dyKP3gu5Sx0doY4W+Q1xQ2DiLaKkeMi8eRUKD5sRgJy5n/sTZcn
PI4dWmcxEzuXFeapOo4Lmkemz8fTyBe3zDoGd4o3896wBEJTtOM/E/ufXL3LC6wk
K0F7y9Th3qfkmDCbDQiDoV2u63KCBVnjBLuaaSmma3atldaGnL8PMsPRTfY3k2M+
LSxRGK1TXm/BBlPYbUi92iaLxCQAciOGafTgM6lkXQKBgQDVRmk3jJ4TG1SHT8Xm
FQX9LUaqM+sde6MeA5b/IbHTj+V14SOKGNTMs4qMTnp9GJqwCK1aSJ4Ecit+rEIZ
UaTFgI42jvGT7F3PUjNu5OLdGq4F9RIz0qst0EdSj/QXrK58svgmxePxke/Tv0yw
Lo0EfOXznYnK7WpYGV5rLLUuLQKBgQC1/PaKHk7KRBlnCgl6F8kC8u6Ta8yPwtvj
nSjHHQOuZWs1gieK8NHODBHbO6F83TxmQIwJ0H7AjD+JdR+fy9mH5YmGDydUjR68
zWhYwD4wJGcM7L6l6jWzRgrrg6nnTEXrMu9Jhh6xLWIsElBiGEloxGWosh++tb7n
PgzLCFMwMwKBgBRhqTZ0yrp6tyZDOl9VjP/37rPfSE3F/f2lTC3Pk4XrT3tna5UL
8HIrikcETPJdgpLmEWL6Y5d7LarqXVq8EaoKMg0GthFz2jcw3NdxKjkFDrJlDDtF
m7RCHj7GoQYOK5KhK9PQv4rbbnbm5jZEDJfsM7GHUZ7B95K5wesuF5Z1AoGAFgmL
0S3aXKPib5fHjgFTVggU28UyADaYafed+H6K85NUaCZao3iF722GvAV8iKJBriAi
1Q1qS+avyvVj3vXQYaRqAtHS8WolTreQ6y5cWXgPAoGolG7IEe1pZRuMd3XFAbYp
Q735+XqFaNDO6xIF0an2pXbsYSug8l+RLQTVDgECgYByje781EYUvXGNJ1yEFdM4
smjy++i0OW0gaIJsCnSDPKda2vYoIKBtjuAGisQTMTI6gnnlAiTI1k579YIUCYhw
4yW4ZPzbhhWtFBnH9rYUxIAcuzoEyhIabZC1MdPVVdLi9JR2R1q5vgHhnijT/u0d
eclGCW27AS5eGpzbTOuy1A==
-----END PRIVATE KEY-----
"""
SELECTOR = "briefing1"


def dns_answering(records: dict[str, str]) -> Callable[..., bytes | None]:
    """A dnsfunc for dkim.verify: TXT answers for the names given, none for others."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        text = records.get(name.decode("ascii").rstrip("."))
        return text.encode("ascii") if text is not None else None

    return lookup


def dkim_dns(domain: str, selector: str = SELECTOR, key: str = TEST_PRIVATE_KEY) -> Callable:
    """The DNS of a domain that published this key's public half under `selector`."""
    return dns_answering({f"{selector}._domainkey.{domain}": dns_record(key.encode("ascii"))})
