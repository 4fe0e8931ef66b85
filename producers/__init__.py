"""touchpoint.producers"""
