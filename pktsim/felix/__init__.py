"""Calico's felix, iptables dataplane: the tables and IP sets a Calico node has.

``names`` holds felix's naming (chains, rule hashes, IP sets, marks).
"""
