"""Payload encryption (AES-256-GCM codec, key ring) and the codec server: docs/encryption.md."""
