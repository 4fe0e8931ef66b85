"""touchpoint.schemas"""
