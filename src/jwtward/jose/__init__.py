"""The JOSE layer: JWA algorithms, typed keys, JWK/JWKS, compact JWS."""
