<?xml version="1.0" encoding="utf-8"?>
<!-- The RSS feed as a page, when a browser opens /feed/ (feed readers ignore this). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="utf-8" doctype-system="about:legacy-compat"/>
  <xsl:template match="/rss/channel">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="color-scheme" content="light dark"/>
        <title><xsl:value-of select="title"/> · RSS feed</title>
        <link rel="stylesheet" href="/static/css/site.css"/>
      </head>
      <body>
        <header class="site-header">
          <a class="brand" href="{link}"><img class="brand-mark" src="/static/img/mark.svg" alt="" width="36" height="36"/><span class="wordmark"><xsl:value-of select="title"/></span></a>
        </header>
        <main id="main">
          <h1>RSS feed</h1>
          <p class="notice">This is the RSS feed of <xsl:value-of select="title"/>. Copy this page's address into a feed reader to follow new articles there.</p>
          <ul class="article-list">
            <xsl:for-each select="item">
              <li>
                <xsl:if test="category"><p class="kicker"><xsl:value-of select="category"/></p></xsl:if>
                <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
                <p class="meta"><xsl:value-of select="pubDate"/></p>
              </li>
            </xsl:for-each>
          </ul>
        </main>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
