"""touchpoint.sinks"""
