"""admit"""
