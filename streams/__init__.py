"""touchpoint.streams"""
