"""Bytes on the wire: fixed-offset header reads, checksums, and fast frame builders.

Every builder here produces exactly the bytes scapy produces for the same fields (a property
test holds them to it); they exist because building with scapy costs 300-500 µs a frame
(benchmarks/README.md, "What a frame costs") and pktsim builds every TCP segment of a transfer.
"""
